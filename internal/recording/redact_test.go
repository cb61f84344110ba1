package recording

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	proxySecret = "gh-proxy-8c1f0e2d"
	targetToken = "tgt/s3cr3t+value="
)

func testRedactor() *Redactor {
	return &Redactor{
		Headers: []string{"x-vault-token"},
		Secrets: [][]byte{[]byte(proxySecret), []byte(targetToken), BasicAuthForm("svc", targetToken)},
	}
}

func TestRedactHeader(t *testing.T) {
	basic := string(BasicAuthForm("svc", targetToken))
	tests := []struct {
		name string
		in   http.Header
		want http.Header
	}{
		{"bearer keeps scheme", http.Header{"Authorization": {"Bearer " + proxySecret}}, http.Header{"Authorization": {"Bearer [REDACTED]"}}},
		{"proxy basic", http.Header{"Proxy-Authorization": {"Basic " + basic}}, http.Header{"Proxy-Authorization": {"Basic [REDACTED]"}}},
		{"authorization without scheme", http.Header{"Authorization": {"opaque"}}, http.Header{"Authorization": {"[REDACTED]"}}},
		{"cookie names kept", http.Header{"Cookie": {"sid=abc; theme=dark"}}, http.Header{"Cookie": {"sid=[REDACTED]; theme=[REDACTED]"}}},
		{"set-cookie attributes kept", http.Header{"Set-Cookie": {"sid=abc; Path=/; HttpOnly", "x=1"}}, http.Header{"Set-Cookie": {"sid=[REDACTED]; Path=/; HttpOnly", "x=[REDACTED]"}}},
		{"api key", http.Header{"X-Api-Key": {"k-123"}}, http.Header{"X-Api-Key": {"[REDACTED]"}}},
		{"configured header, any case", http.Header{"X-VAULT-TOKEN": {"hvs.1"}}, http.Header{"X-VAULT-TOKEN": {"[REDACTED]"}}},
		{"secret inside another header", http.Header{"X-Echo": {"got " + targetToken + " ok"}}, http.Header{"X-Echo": {"got [REDACTED] ok"}}},
		{"basic form inside another header", http.Header{"X-Forwarded-Auth": {basic}}, http.Header{"X-Forwarded-Auth": {"[REDACTED]"}}},
		// net/http canonicalizes names, so a secret an origin put in one arrives case-changed.
		{"secret in a name, canonicalized", http.Header{http.CanonicalHeaderKey("X-" + proxySecret): {"1"}}, http.Header{"X-[REDACTED]": {"1"}}},
		{"harmless header untouched", http.Header{"Accept": {"*/*"}}, http.Header{"Accept": {"*/*"}}},
	}
	r := testRedactor()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in.Clone()
			if diff := cmp.Diff(tt.want, r.Header(tt.in)); diff != "" {
				t.Errorf("Header (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(in, tt.in); diff != "" {
				t.Errorf("Header modified its argument:\n%s", diff)
			}
		})
	}
}

// TestRedactNamesThatCollide: two names that differ only in a secret's case keep both values under the one
// redacted name.
func TestRedactNamesThatCollide(t *testing.T) {
	got := testRedactor().Header(http.Header{"X-" + proxySecret: {"1"}, "X-" + strings.ToUpper(proxySecret): {"2"}})
	vs := got["X-[REDACTED]"]
	slices.Sort(vs)
	if len(got) != 1 || !slices.Equal(vs, []string{"1", "2"}) {
		t.Fatalf("Header = %v, want both values under X-[REDACTED]", got)
	}
}

func TestRedactString(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"query", "https://h/p?token=" + proxySecret + "&a=1", "https://h/p?token=[REDACTED]&a=1"},
		{"query-escaped", "https://h/p?t=tgt%2Fs3cr3t%2Bvalue%3D", "https://h/p?t=[REDACTED]"},
		{"path-escaped", "https://h/tgt%2Fs3cr3t+value=/x", "https://h/[REDACTED]/x"},
		{"twice", proxySecret + proxySecret, "[REDACTED]"},
		{"overlapping secrets", "tgt/s3cr3t+value=" + "gh-proxy-8c1f0e2d", "[REDACTED]"},
		{"no secret", "https://h/p", "https://h/p"},
	}
	r := testRedactor()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.String(tt.in); got != tt.want {
				t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestRedactOverlapping pins that overlapping matches of two secrets are
// replaced as one, so the second secret's tail does not survive.
func TestRedactOverlapping(t *testing.T) {
	r := &Redactor{Secrets: [][]byte{[]byte("abcd"), []byte("cdef")}}
	if got := r.String("xabcdefx"); got != "x[REDACTED]x" {
		t.Errorf("String = %q, want %q", got, "x[REDACTED]x")
	}
}

// TestRedactSelfOverlapping: occurrences of one secret that overlap each other are all found, so "abab" leaves
// nothing of "ababab" standing.
func TestRedactSelfOverlapping(t *testing.T) {
	r := &Redactor{Secrets: [][]byte{[]byte("abab")}}
	if got := r.String("xabababx"); got != "x[REDACTED]x" {
		t.Errorf("String = %q, want %q", got, "x[REDACTED]x")
	}
}

// TestRedactAuthorizationWithoutAToken: an Authorization value whose first word is not an RFC 9110 token is no
// scheme and credentials: nothing of it stays.
func TestRedactAuthorizationWithoutAToken(t *testing.T) {
	got := testRedactor().Header(http.Header{"Authorization": {"sk/live:4f2a 9c1b"}, "Proxy-Authorization": {"Negotiate YIIx"}})
	want := http.Header{"Authorization": {"[REDACTED]"}, "Proxy-Authorization": {"Negotiate [REDACTED]"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Header (-want +got):\n%s", diff)
	}
}

// TestRedactExchangeFields: every text field of an exchange that can quote the request (URL, error, decision) is
// redacted, and a request body cut at the limit says so.
func TestRedactExchangeFields(t *testing.T) {
	r := testRedactor()
	ex := &Exchange{URL: "https://api.example/x?token=" + proxySecret, Error: "upstream said " + targetToken,
		Decision: "denied: /admin?key=" + proxySecret, RequestBody: []byte("0123456789abcdef")}
	got := r.Exchange(ex, 8)
	for name, v := range map[string]string{"url": got.URL, "error": got.Error, "decision": got.Decision} {
		if strings.Contains(v, proxySecret) || strings.Contains(v, targetToken) || !strings.Contains(v, Redacted) {
			t.Errorf("%s = %q, want the secret redacted", name, v)
		}
	}
	if string(got.RequestBody) != "01234567" || !got.RequestBodyTruncated {
		t.Errorf("request body %q truncated %v, want 8 bytes and truncated", got.RequestBody, got.RequestBodyTruncated)
	}
}

func TestNilRedactor(t *testing.T) {
	var r *Redactor
	got := r.Header(http.Header{"Authorization": {"Bearer x"}, "Accept": {"a"}})
	want := http.Header{"Authorization": {"Bearer [REDACTED]"}, "Accept": {"a"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("nil Redactor Header (-want +got):\n%s", diff)
	}
	if r.Slack() != 0 || r.String("x") != "x" {
		t.Error("nil Redactor must redact nothing but headers")
	}
}

// TestSecretAtTruncationBoundary runs a body through the proxy's pipeline
// (tap at CaptureLimit, Append) with a secret at every offset around the
// limit, and requires that not one byte of the secret reaches the trail.
// Both a secret longer than the replacement (redaction shortens the body and
// could pull later bytes below the limit) and a shorter one are covered.
func TestSecretAtTruncationBoundary(t *testing.T) {
	const limit = 64
	for _, secret := range []string{"zq9w8v7u6t5s4r3p2o1n0mxlykjhgfzq9w8v7u6t", "zq9w"} {
		for pos := limit - 2*len(secret); pos <= limit+len(secret)+2; pos++ {
			if pos < 0 {
				continue
			}
			dir := t.TempDir()
			s := newTestStore(t, dir)
			s.BodyLimit = limit
			red := &Redactor{Secrets: [][]byte{[]byte(secret)}}
			w, err := s.Create(context.Background(), testMeta("s"), red)
			if err != nil {
				t.Fatal(err)
			}
			body := []byte(strings.Repeat(".", 400))
			copy(body[pos:], secret)
			// A second copy that starts after the limit and crosses the end
			// of what is captured, so only its head is in the tap. Replacing
			// the first copy by the shorter Redacted must not pull that head
			// below the limit.
			if second := w.CaptureLimit() - len(secret)/2; pos+len(secret) <= second {
				copy(body[second:], secret)
			}
			// What the proxy's tap keeps of the body: the first CaptureLimit bytes.
			captured := body[:min(len(body), w.CaptureLimit())]
			ex := &Exchange{Method: "POST", URL: "https://h/", RequestBody: captured, RequestBodyTruncated: len(captured) < len(body),
				RequestBytes: int64(len(body))}
			if err := w.Append(context.Background(), ex); err != nil {
				t.Fatal(err)
			}
			w.Close("done")

			page, _ := s.Read(context.Background(), "s", 0, 0)
			got := page.Items[0]
			if len(got.RequestBody) > limit || !got.RequestBodyTruncated || got.RequestBytes != int64(len(body)) {
				t.Errorf("secret %d bytes at %d: body %d bytes, truncated %v, count %d", len(secret), pos, len(got.RequestBody), got.RequestBodyTruncated, got.RequestBytes)
			}
			if i := bytes.IndexAny(got.RequestBody, secret); i >= 0 {
				t.Errorf("secret %d bytes at %d: secret byte leaked at %d: %q", len(secret), pos, i, got.RequestBody)
			}
			raw, _ := os.ReadFile(trailPath(dir, "s"))
			if bytes.Contains(raw, []byte(secret)) {
				t.Errorf("secret %d bytes at %d: secret in trail file", len(secret), pos)
			}
		}
	}
}

// TestAppendRedactsEverything pins that no secret form reaches the file,
// whichever field carries it.
func TestAppendRedactsEverything(t *testing.T) {
	dir := t.TempDir()
	s := newTestStore(t, dir)
	w, err := s.Create(context.Background(), testMeta("s"), testRedactor())
	if err != nil {
		t.Fatal(err)
	}
	basic := string(BasicAuthForm("svc", targetToken))
	ex := &Exchange{
		Method:          "POST",
		URL:             "https://h/p?key=" + proxySecret,
		RequestHeaders:  http.Header{"Authorization": {"Basic " + basic}, "X-Note": {targetToken}},
		ResponseHeaders: http.Header{"Set-Cookie": {"sid=" + proxySecret + "; Secure"}},
		RequestBody:     []byte(`{"password":"` + targetToken + `"}`),
		ResponseBody:    []byte("echo " + basic),
		Error:           "dial https://h/p?key=" + proxySecret,
	}
	orig := *ex
	if err := w.Append(context.Background(), ex); err != nil {
		t.Fatal(err)
	}
	w.Close("done")
	if ex.URL != orig.URL || string(ex.RequestBody) != string(orig.RequestBody) {
		t.Error("Append modified the caller's exchange")
	}
	raw, _ := os.ReadFile(trailPath(dir, "s"))
	page, err := s.Read(context.Background(), "s", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Bodies are base64 in the file, so look at what Read decodes too.
	got := page.Items[0]
	decoded := fmt.Sprintf("%v %s %s", got, got.RequestBody, got.ResponseBody)
	for _, secret := range []string{proxySecret, targetToken, basic} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("trail file contains %q", secret)
		}
		if strings.Contains(decoded, secret) {
			t.Errorf("recorded exchange contains %q: %s", secret, decoded)
		}
	}
}

// TestTruncateWithoutSecretSharesNothingWritable: with nothing to redact, Truncate hands back the input itself
// (no copy), cut to the limit; appending to the result must not write into the caller's bytes past the cut.
func TestTruncateWithoutSecretSharesNothingWritable(t *testing.T) {
	r := &Redactor{Secrets: [][]byte{[]byte("s3cr3t-value")}}
	b := []byte("hello world")
	out, cut := r.Truncate(b, 5)
	if string(out) != "hello" || !cut {
		t.Fatalf("Truncate = %q, %v", out, cut)
	}
	_ = append(out, 'X')
	if string(b) != "hello world" {
		t.Errorf("appending to the result changed the input: %q", b)
	}
	if got := r.String("no secret here"); got != "no secret here" {
		t.Errorf("String = %q", got)
	}
	if got := r.String("x s3cr3t-value y"); got != "x "+Redacted+" y" {
		t.Errorf("String with a secret = %q", got)
	}
}

// TestExchangeHeadersIndependent: the redacted request and response headers share one backing array of values;
// appending to a value list of one must not change the other.
func TestExchangeHeadersIndependent(t *testing.T) {
	r := &Redactor{}
	ex := &Exchange{RequestHeaders: http.Header{"A": {"1"}}, ResponseHeaders: http.Header{"B": {"2"}, "C": {"3"}}}
	out := r.Exchange(ex, 0)
	out.RequestHeaders["A"] = append(out.RequestHeaders["A"], "x")
	out.ResponseHeaders["B"] = append(out.ResponseHeaders["B"], "y")
	if got := out.ResponseHeaders.Get("B"); got != "2" {
		t.Errorf("response header B = %q", got)
	}
	if c := out.ResponseHeaders["C"]; len(c) != 1 || c[0] != "3" {
		t.Errorf("response header C = %q", c)
	}
	if a := out.RequestHeaders["A"]; len(a) != 2 || a[0] != "1" || a[1] != "x" {
		t.Errorf("request header A = %q", a)
	}
}

// TestRedactExchangeSharesCleanHeaders: a header redaction leaves unchanged is shared with the exchange
// instead of copied, one that it changes is copied and the exchange's own keeps its values.
func TestRedactExchangeSharesCleanHeaders(t *testing.T) {
	r := testRedactor()
	clean := http.Header{"Content-Type": {"application/json"}, "Date": {"Tue, 01 Dec 2026 10:00:00 GMT"}}
	for _, tc := range []struct {
		name        string
		req, resp   http.Header
		shareReq    bool
		shareResp   bool
		wantReqAuth string
	}{
		{"credential in the request only", http.Header{"Authorization": {"Bearer " + proxySecret}, "Accept": {"*/*"}}, clean,
			false, true, "Bearer [REDACTED]"},
		{"secret echoed in the response", http.Header{"Accept": {"*/*"}}, http.Header{"X-Echo": {targetToken}},
			true, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.req.Clone()
			out := r.Exchange(&Exchange{RequestHeaders: tc.req, ResponseHeaders: tc.resp}, -1)
			same := func(a, b http.Header) bool {
				return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
			}
			if same(out.RequestHeaders, tc.req) != tc.shareReq || same(out.ResponseHeaders, tc.resp) != tc.shareResp {
				t.Errorf("shared request %v response %v, want %v %v", same(out.RequestHeaders, tc.req),
					same(out.ResponseHeaders, tc.resp), tc.shareReq, tc.shareResp)
			}
			if got := out.RequestHeaders.Get("Authorization"); got != tc.wantReqAuth {
				t.Errorf("recorded Authorization %q, want %q", got, tc.wantReqAuth)
			}
			if v := out.ResponseHeaders.Get("X-Echo"); strings.Contains(v, targetToken) {
				t.Errorf("recorded X-Echo %q holds the secret", v)
			}
			if !reflect.DeepEqual(tc.req, before) {
				t.Errorf("the exchange's own request header changed: %v", tc.req)
			}
		})
	}
}

// TestCleanHeaderNamesCostNoCopy: names longer than every secret but holding none (most responses have some) are
// checked in place; redaction runs for every exchange, so a copy per name would be a copy per request.
func TestCleanHeaderNamesCostNoCopy(t *testing.T) {
	r := testRedactor()
	h := http.Header{"Access-Control-Allow-Origin": {"*"}, "Cross-Origin-Embedder-Policy-Report-Only": {"require-corp"},
		"Content-Security-Policy-Report-Only": {"default-src 'self'"}}
	if n := testing.AllocsPerRun(100, func() { r.redacts(h) }); n != 0 {
		t.Fatalf("checking clean header names allocates %v times", n)
	}
}
