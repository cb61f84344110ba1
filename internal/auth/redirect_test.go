package auth

import (
	"encoding/json"
	"math/rand/v2"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The base a browser resolves redirect_uri against: the Gatehouse page that issued the redirect.
const (
	oracleBase     = "https://gatehouse.example/auth/api/v1/oidc/src/login"
	oracleBaseHost = "gatehouse.example"
)

// whatwgResolve applies the steps of the WHATWG URL parser that decide where a browser goes with input relative
// to oracleBase: leading and trailing C0 controls and spaces are stripped, every tab and newline is removed,
// backslash counts as slash for special schemes, two leading slashes start an authority (any number of slashes
// and backslashes are skipped for special schemes), a special scheme other than the base's starts an authority
// even without slashes, user info is dropped up to the last '@', the host is percent-decoded, lower-cased and
// read as an IPv4 number in decimal, octal or hex when its last label is numeric. It returns the scheme and host
// the browser would use; a non-special scheme gives host "".
func whatwgResolve(input string) (scheme, host string) {
	input = strings.TrimFunc(input, func(r rune) bool { return r <= 0x20 })
	input = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, input)
	slashy := func(c byte) bool { return c == '/' || c == '\\' }
	rest := input
	scheme = "https"
	if i := strings.IndexByte(input, ':'); i > 0 && validScheme(input[:i]) {
		scheme, rest = strings.ToLower(input[:i]), input[i+1:]
		switch {
		case !slices.Contains([]string{"http", "https", "ws", "wss", "ftp"}, scheme):
			return scheme, "" // file:, javascript:, data:, ...: never this server
		case scheme != "https":
			return scheme, authorityHost(strings.TrimLeftFunc(rest, func(r rune) bool { return r == '/' || r == '\\' }))
		}
	}
	if len(rest) >= 2 && slashy(rest[0]) && slashy(rest[1]) {
		return scheme, authorityHost(strings.TrimLeftFunc(rest, func(r rune) bool { return r == '/' || r == '\\' }))
	}
	return scheme, oracleBaseHost
}

func validScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		alpha := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !alpha && (i == 0 || !('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}

// authorityHost reads the host of an authority that starts s, as a special-scheme URL does.
func authorityHost(s string) string {
	if i := strings.IndexAny(s, "/\\?#"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	if strings.HasPrefix(s, "[") {
		if i := strings.IndexByte(s, ']'); i >= 0 {
			return strings.ToLower(s[:i+1])
		}
		return strings.ToLower(s)
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	if dec, err := url.PathUnescape(s); err == nil {
		s = dec
	}
	s = strings.ToLower(s)
	if v4, ok := whatwgIPv4(s); ok {
		return v4
	}
	return s
}

// whatwgIPv4 is the WHATWG IPv4 parser: up to four dot-separated numbers in decimal, octal (leading 0) or hex
// (0x), the last filling the remaining bytes; one trailing dot is allowed.
func whatwgIPv4(s string) (string, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 1 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	if len(parts) == 0 || len(parts) > 4 {
		return "", false
	}
	nums := make([]uint64, len(parts))
	for i, p := range parts {
		base := 10
		switch {
		case strings.HasPrefix(p, "0x") || strings.HasPrefix(p, "0X"):
			p, base = p[2:], 16
		case len(p) > 1 && p[0] == '0':
			p, base = p[1:], 8
		}
		if p == "" {
			nums[i] = 0
			continue
		}
		n, err := strconv.ParseUint(p, base, 64)
		if err != nil {
			return "", false
		}
		nums[i] = n
	}
	var ip uint64
	for i, n := range nums[:len(nums)-1] {
		if n > 255 {
			return "", false
		}
		ip |= n << (8 * (3 - i))
	}
	last := nums[len(nums)-1]
	if last >= 1<<(8*(5-len(nums))) {
		return "", false
	}
	ip |= last
	return strconv.Itoa(int(ip>>24)) + "." + strconv.Itoa(int(ip>>16&255)) + "." + strconv.Itoa(int(ip>>8&255)) + "." + strconv.Itoa(int(ip&255)), true
}

// onSite reports whether a browser following raw stays on this server or goes to the loopback callback.
func onSite(scheme, host string) bool {
	return scheme == "https" && host == oracleBaseHost || scheme == "http" && slices.Contains(loopbackHosts, host)
}

var testPolicy = RedirectPolicy{Paths: []string{"/auth/cb"}}

// redirectSeeds are attacks on redirect_uri checks and the values that must keep working. want is whether Check
// accepts.
var redirectSeeds = []struct {
	raw  string
	want bool
}{
	{"http://127.0.0.1:49152/callback", true},
	{"http://[::1]:8080/callback", true},
	{"http://localhost:1/callback", true},
	{"/auth/cb", true},

	{"/\t/evil.example/cb", false},
	{"/\n/evil.example/cb", false},
	{"/\r/evil.example/cb", false},
	{"\t//evil.example/cb", false},
	{" //evil.example/cb", false},
	{"\x00//evil.example/cb", false},
	{"//evil.example/cb", false},
	{"/\\evil.example/cb", false},
	{"\\\\evil.example/cb", false},
	{"/%2F/evil.example", false},
	{"/%09/evil.example", false},
	{"https:evil.example/cb", false},
	{"http:evil.example/cb", false},
	{"http:/evil.example/cb", false},
	{"http:\\\\evil.example\\callback", false},
	{"https://evil.example/cb", false},
	{"http://evil.example/callback", false},
	{"http://127.0.0.1:80@evil.example/callback", false},
	{"http://127.0.0.1.evil.example:80/callback", false},
	{"http://evil.example#@127.0.0.1:80/callback", false},
	{"http://127.0.0.1:80\\@evil.example/callback", false},
	{"http://127.0.0.1:80/callback\\@evil.example", false},
	{"http://0x7f.1:80/callback", false},
	{"http://127.1:80/callback", false},
	{"http://LOCALHOST:80/callback", false},
	{"http://localhost.:80/callback", false},
	{"http://%6c%6fcalhost:80/callback", false},
	{"http://[::ffff:7f00:1]:80/callback", false},
	{"HTTP://127.0.0.1:80/callback", false},
	{"http://127.0.0.1:080/callback", false},
	{"http://127.0.0.1:0/callback", false},
	{"http://127.0.0.1:65536/callback", false},
	{"http://127.0.0.1/callback", false},
	{"http://127.0.0.1:80/callback?x=1", false},
	{"http://127.0.0.1:80/callback#x", false},
	{"http://127.0.0.1:80//evil.example/callback", false},
	{"http://127.0.0.1:80/Callback", false},
	{"http://127.0.0.1:80/callback/..", false},
	{"http://127.0.0.1:80/callback%2F..", false},
	{"http://127.0.0.1\t:80/callback", false},
	{"ht\ttp://127.0.0.1:80/callback", false},
	{"http://127.0.0.1:80/call\tback", false},
	{"http://127.0.0.1:80/callback ", false},
	{"//127.0.0.1:80/callback", false},
	{"https://127.0.0.1:80/callback", false},
	{"javascript:alert(1)//127.0.0.1:80/callback", false},
	{"/auth/cb\t", false},
	{"/auth/cb/../../x", false},
	{"/auth/other", false},
	{"/auth/cb?x=//evil.example", false},
	{"/auth/c\u00a0b", false},
	{"http://127.0.0.1:80/callback\u3002evil", false},
	{"", false},
}

// TestRedirectPolicyWHATWG checks every seed against the expected answer and, for accepted values, that a browser
// (as the oracle resolves it) stays on this server or its loopback callback.
func TestRedirectPolicyWHATWG(t *testing.T) {
	for _, s := range redirectSeeds {
		t.Run(strconv.Quote(s.raw), func(t *testing.T) {
			err := testPolicy.Check(s.raw)
			if got := err == nil; got != s.want {
				t.Fatalf("Check(%q) accepted=%v, want %v (err %v)", s.raw, got, s.want, err)
			}
			if err == nil {
				if scheme, host := whatwgResolve(s.raw); !onSite(scheme, host) {
					t.Fatalf("Check accepted %q, which a browser resolves to %s://%s", s.raw, scheme, host)
				}
			}
		})
	}
}

// TestWHATWGOracleAgainstNode checks the oracle itself against a real WHATWG parser (Node's URL), so the other
// tests do not trust a wrong oracle. Node is on the CI image; where it is missing the Go oracle still runs above.
func TestWHATWGOracleAgainstNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH; the Go oracle is checked by TestRedirectPolicyWHATWG")
	}
	inputs := make([]string, 0, len(redirectSeeds))
	for _, s := range redirectSeeds {
		if s.raw != "" {
			inputs = append(inputs, s.raw)
		}
	}
	// And mutations of the seeds from the bytes URL parsers disagree on, so the oracle is checked beyond them.
	rng := rand.New(rand.NewPCG(9, 9))
	const tricky = "/\\\t\n\r :@.%[]#?~-_0123456789abcdefhlnoptvxELOX"
	for range 3000 {
		b := []byte(redirectSeeds[rng.IntN(len(redirectSeeds))].raw)
		for range 1 + rng.IntN(3) {
			i := rng.IntN(len(b) + 1)
			b = append(b[:i], append([]byte{tricky[rng.IntN(len(tricky))]}, b[i:]...)...)
		}
		inputs = append(inputs, string(b))
	}
	script := `const base = process.argv[1]; let data = ""; process.stdin.on("data", d => data += d);
process.stdin.on("end", () => { const out = JSON.parse(data).map(s => {
  try { const u = new URL(s, base); return {ok: true, scheme: u.protocol.replace(/:$/, ""), host: u.hostname}; }
  catch (e) { return {ok: false}; } }); process.stdout.write(JSON.stringify(out)); });`
	in, _ := json.Marshal(inputs)
	cmd := exec.Command(node, "-e", script, oracleBase)
	cmd.Stdin = strings.NewReader(string(in))
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var got []struct {
		OK     bool   `json:"ok"`
		Scheme string `json:"scheme"`
		Host   string `json:"host"`
	}
	if err := json.Unmarshal(outb, &got); err != nil || len(got) != len(inputs) {
		t.Fatalf("node answer %s: %v", outb, err)
	}
	for i, raw := range inputs {
		if !got[i].OK {
			continue // the browser refuses it outright; no navigation happens
		}
		scheme, host := whatwgResolve(raw)
		// Hosts of other schemes are opaque to a browser's navigation rules here: never this server either way.
		special := slices.Contains([]string{"http", "https", "ws", "wss", "ftp"}, scheme)
		if scheme != got[i].Scheme || (special && host != got[i].Host) {
			t.Errorf("%q: oracle says %s://%s, node says %s://%s", raw, scheme, host, got[i].Scheme, got[i].Host)
		}
		if testPolicy.Check(raw) == nil && !onSite(got[i].Scheme, got[i].Host) {
			t.Errorf("Check accepted %q, which node resolves to %s://%s", raw, got[i].Scheme, got[i].Host)
		}
	}
}

// FuzzRedirectPolicy: whatever Check accepts, a browser resolves to this server or its loopback callback, Go's
// parser reads the same, and the value is unchanged by the browser's tab, newline and space stripping.
func FuzzRedirectPolicy(f *testing.F) {
	for _, s := range redirectSeeds {
		f.Add(s.raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if testPolicy.Check(raw) != nil {
			return
		}
		if scheme, host := whatwgResolve(raw); !onSite(scheme, host) {
			t.Fatalf("Check accepted %q, which a browser resolves to %s://%s", raw, scheme, host)
		}
		if strings.ContainsAny(raw, "\t\n\r \\%@?#") {
			t.Fatalf("Check accepted %q with a byte a browser rewrites or that changes the authority", raw)
		}
		if !strings.HasPrefix(raw, "/") {
			u, err := url.Parse(raw)
			if err != nil || u.Scheme != "http" || !slices.Contains(loopbackHosts, strings.TrimSuffix(u.Host, ":"+u.Port())) {
				t.Fatalf("Check accepted %q, which Go reads as %v (%v)", raw, u, err)
			}
		}
	})
}
