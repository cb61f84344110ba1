package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// chunkedReader yields body in the given piece sizes (cycled), to put form boundaries anywhere.
type chunkedReader struct {
	body  []byte
	sizes []int
	i     int
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if len(c.body) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(c.sizes) > 0 {
		n = max(1, c.sizes[c.i%len(c.sizes)])
		c.i++
	}
	n = min(n, len(p), len(c.body))
	copy(p, c.body[:n])
	c.body = c.body[n:]
	return n, nil
}

// FuzzScrubReader checks the streaming scrubber against masking the whole body at once: however the body is cut
// into reads, the output is the same bytes, and no form of the secret survives.
func FuzzScrubReader(f *testing.F) {
	f.Add([]byte("xx"+targetToken+"yy"), []byte{1, 2, 3})
	f.Add([]byte(targetToken+targetToken), []byte{7})
	f.Add([]byte("target-token-9c2"), []byte{5})
	f.Add([]byte(strings.Repeat("t", 100)+"target-token-9c2a"), []byte{99, 1})
	f.Add([]byte(url.QueryEscape("p@ss/word+1")+"&"), []byte{3})
	f.Fuzz(func(t *testing.T, body, sizes []byte) {
		s := newScrubber([]string{targetToken, "p@ss/word+1"})
		want := append([]byte(nil), body...)
		s.mask(want)
		var sz []int
		for _, b := range sizes {
			sz = append(sz, int(b))
		}
		got, err := io.ReadAll(newScrubReader(io.NopCloser(&chunkedReader{body: append([]byte(nil), body...), sizes: sz}), s, nil))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("streamed %q, whole-body mask %q", got, want)
		}
		for _, f := range s.forms {
			if bytes.Contains(got, f) {
				t.Fatalf("form %q survived in %q", f, got)
			}
		}
	})
}

func TestScrubberForms(t *testing.T) {
	var sc scrubberCache
	c := TargetCredential{Type: CredentialBasicAuth, Username: "svc", Password: "p@ss/w0rd&<x>"}
	s := sc.scrubberFor(c)
	userPass := "svc:p@ss/w0rd&<x>"
	for _, form := range []string{
		c.Password, userPass, base64.StdEncoding.EncodeToString([]byte(userPass)),
		url.QueryEscape(c.Password), url.PathEscape(c.Password), `p@ss\/w0rd\u0026\u003cx\u003e`, "p@ss/w0rd&amp;&lt;x&gt;",
		strings.ToLower(url.QueryEscape(c.Password)),
	} {
		in := "<<" + form + ">>"
		if got := s.maskString(in); got != "<<"+strings.Repeat("*", len(form))+">>" {
			t.Errorf("form %q: masked to %q", form, got)
		}
	}
	if sc.scrubberFor(TargetCredential{Type: CredentialCertificate, PrivateKeyPEM: "k"}) != nil || sc.scrubberFor(TargetCredential{}) != nil {
		t.Error("a credential that is not injected into requests got a scrubber")
	}
	if n := testing.AllocsPerRun(100, func() { _ = sc.scrubberFor(TargetCredential{Type: CredentialToken, Token: targetToken}) }); n != 0 {
		t.Errorf("scrubberFor allocates %v times per request", n)
	}
}

func TestScrubReaderOneByteAtATime(t *testing.T) {
	s := newScrubber([]string{targetToken})
	body := "a" + targetToken + "b" + targetToken[:5] + "c" + targetToken
	got, err := io.ReadAll(newScrubReader(io.NopCloser(iotest.OneByteReader(strings.NewReader(body))), s, nil))
	stars := strings.Repeat("*", len(targetToken))
	if want := "a" + stars + "b" + targetToken[:5] + "c" + stars; err != nil || string(got) != want {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
}

// TestScrubReaderLongSecret: a secret longer than the pooled window's slack (a long JWT or header value) still
// streams and is masked: the reader takes a buffer big enough to hold back a whole form.
func TestScrubReaderLongSecret(t *testing.T) {
	secret := strings.Repeat("k7Qx", 10<<10) // 40 KiB
	s := newScrubber([]string{secret})
	body := "head " + secret + " middle " + secret[:100] + " tail " + secret
	done := make(chan string, 1)
	go func() {
		got, _ := io.ReadAll(newScrubReader(io.NopCloser(iotest.HalfReader(strings.NewReader(body))), s, nil))
		done <- string(got)
	}()
	select {
	case got := <-done:
		stars := strings.Repeat("*", len(secret))
		if want := "head " + stars + " middle " + secret[:100] + " tail " + stars; got != want {
			t.Fatalf("got %d bytes, %d of them '*'; want the two whole copies masked", len(got), strings.Count(got, "*"))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the scrubbed stream stopped making progress")
	}
}

// TestSecretNeverReachesClient pins issue 9's "the client can read the injected secret": an origin that reflects
// the request (headers, body, TRACE-style echo, trailers, early hints, a Location, compressed or streamed in
// pieces) gives the client the target's credential masked, never in clear, and framing stays right.
func TestSecretNeverReachesClient(t *testing.T) {
	reflect := func(w http.ResponseWriter, r *http.Request) string {
		auth := r.Header.Get("Authorization")
		if auth == "" {
			auth = r.Header.Get("X-Api-Key")
		}
		return auth
	}
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	var seenAE, seenRange []string
	for _, tc := range []struct {
		name    string
		cred    TargetCredential
		secrets []string // forms that must not appear
		h       func(w http.ResponseWriter, r *http.Request)
		status  int
		clen    bool // the response keeps its Content-Length
	}{
		{"headers echoed as JSON body", TargetCredential{Type: CredentialToken, Token: targetToken}, []string{targetToken},
			func(w http.ResponseWriter, r *http.Request) {
				b, _ := json.Marshal(r.Header)
				w.Header().Set("Content-Length", strconv.Itoa(len(b)))
				w.Write(b)
			}, 200, true},
		{"echo in response headers", TargetCredential{Type: CredentialToken, Token: targetToken}, []string{targetToken},
			func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Echo-Authorization", reflect(w, r))
				w.Header().Set("Location", "/next?token="+url.QueryEscape(reflect(w, r)))
				// Set without canonicalizing, so the name goes out holding the secret exactly.
				w.Header()["X-"+strings.TrimPrefix(reflect(w, r), "Bearer ")] = []string{"in a name"}
				w.WriteHeader(http.StatusFound)
			}, 302, false},
		{"TRACE-style echo of the request", TargetCredential{Type: CredentialToken, Token: targetToken}, []string{targetToken},
			func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "message/http")
				r.Write(w)
			}, 200, false},
		{"streamed in pieces", TargetCredential{Type: CredentialToken, Token: targetToken}, []string{targetToken},
			func(w http.ResponseWriter, r *http.Request) {
				a := reflect(w, r)
				for i := 0; i < len(a); i += 3 {
					io.WriteString(w, a[i:min(i+3, len(a))])
					w.(http.Flusher).Flush()
					time.Sleep(time.Millisecond)
				}
			}, 200, false},
		{"trailer", TargetCredential{Type: CredentialToken, Token: targetToken}, []string{targetToken},
			func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", "X-Echo")
				io.WriteString(w, "body")
				w.(http.Flusher).Flush() // no Content-Length, so the trailer survives to the HTTP/1.1 client
				w.Header().Set("X-Echo", reflect(w, r))
			}, 200, false},
		{"early hints", TargetCredential{Type: CredentialToken, Token: targetToken}, []string{targetToken},
			func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Link", "</x?"+reflect(w, r)+">; rel=preload")
				w.WriteHeader(http.StatusEarlyHints)
				w.Header().Del("Link")
				io.WriteString(w, "ok")
			}, 200, false},
		{"gzip although identity was asked", TargetCredential{Type: CredentialToken, Token: targetToken}, []string{targetToken},
			func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "gzip")
				w.Write(gz([]byte("echo: " + reflect(w, r))))
			}, 200, false},
		{"deflate although identity was asked", TargetCredential{Type: CredentialToken, Token: targetToken}, []string{targetToken},
			func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "deflate")
				zw := zlib.NewWriter(w)
				io.WriteString(zw, "echo: "+reflect(w, r))
				zw.Close()
			}, 200, false},
		{"an encoding no scanner reads", TargetCredential{Type: CredentialToken, Token: targetToken}, []string{targetToken},
			func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "br")
				io.WriteString(w, "\x1b"+reflect(w, r))
			}, 502, false},
		{"basic auth forms", TargetCredential{Type: CredentialBasicAuth, Username: "svc", Password: "s3cret-pass"},
			[]string{"s3cret-pass", base64.StdEncoding.EncodeToString([]byte("svc:s3cret-pass"))},
			func(w http.ResponseWriter, r *http.Request) {
				u, p, _ := r.BasicAuth()
				io.WriteString(w, reflect(w, r)+" "+u+":"+p+" "+url.QueryEscape(p))
			}, 200, false},
		{"header credential", TargetCredential{Type: CredentialHeader, HeaderName: "X-Api-Key", HeaderValue: "key/with+chars=="},
			[]string{"key/with+chars==", url.QueryEscape("key/with+chars=="), `key\/with+chars==`},
			func(w http.ResponseWriter, r *http.Request) {
				v := reflect(w, r)
				io.WriteString(w, v+" "+url.QueryEscape(v)+" "+strings.ReplaceAll(v, "/", `\/`))
			}, 200, false},
	} {
		for _, h2 := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: " http1", true: " http2"}[h2], func(t *testing.T) {
				st := newSetup(t, true, func(w http.ResponseWriter, r *http.Request) {
					seenAE, seenRange = r.Header.Values("Accept-Encoding"), r.Header.Values("Range")
					tc.h(w, r)
				}, func(_ *Server, tg *Target) { tg.Credential = tc.cred })
				client := proxyClient(t, st.addr, st.ca, h2)
				client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
				client.Transport.(*http.Transport).DisableCompression = true
				req, _ := http.NewRequest(http.MethodGet, st.origin.URL+"/reflect", nil)
				req.Header.Set("Accept-Encoding", "gzip, br")
				req.Header.Set("Range", "bytes=3-9")
				var hints []string
				req = req.WithContext(withEarlyHints(req, &hints))
				resp, err := client.Do(bearer(req))
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatalf("read body: %v", err)
				}
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
				}
				var all bytes.Buffer
				resp.Header.Write(&all)
				resp.Trailer.Write(&all)
				all.Write(body)
				all.WriteString(strings.Join(hints, "\n"))
				for _, sec := range tc.secrets {
					// Without regard to case: the client canonicalizes the header names it reads.
					if strings.Contains(strings.ToLower(all.String()), strings.ToLower(sec)) {
						t.Errorf("the client read %q:\n%s", sec, all.String())
					}
				}
				if tc.status == 200 && !strings.Contains(all.String(), "****") {
					t.Errorf("nothing masked, so the origin reflected nothing and the test proves nothing:\n%s", all.String())
				}
				if tc.clen && resp.ContentLength != int64(len(body)) {
					t.Errorf("Content-Length %d, body %d bytes", resp.ContentLength, len(body))
				}
				if len(seenAE) != 1 || seenAE[0] != "identity" || len(seenRange) != 0 {
					t.Errorf("origin got Accept-Encoding %q and Range %q, want identity and none", seenAE, seenRange)
				}
			})
		}
	}
}

// withEarlyHints collects the 1xx headers the client receives.
func withEarlyHints(req *http.Request, into *[]string) context.Context {
	return httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			for k, v := range h {
				*into = append(*into, k+": "+strings.Join(v, ","))
			}
			return nil
		},
	})
}

// TestWebSocketScrubbed: what the target sends over an upgraded connection is scrubbed too, and the extension
// offer (permessage-deflate would compress it past the scan) is not forwarded.
func TestWebSocketScrubbed(t *testing.T) {
	var ext []string
	st := newSetup(t, false, func(w http.ResponseWriter, r *http.Request) {
		ext = r.Header.Values("Sec-Websocket-Extensions")
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		a := r.Header.Get("Authorization")
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			websocketAccept(r.Header.Get("Sec-WebSocket-Key")) + "\r\nX-Echo: " + a + "\r\n\r\n")
		brw.WriteString(a[:9])
		brw.Flush()
		time.Sleep(5 * time.Millisecond)
		brw.WriteString(a[9:] + "|end")
		brw.Flush()
	}, nil)
	conn, br := plainTunnel(t, st.addr, st.origin.hostPort())
	resp := rawExchange(t, conn, br, "GET /ws HTTP/1.1\r\nHost: "+st.origin.hostPort()+"\r\nAuthorization: Bearer "+userSecret+
		"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "+wsKey+
		"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := resp.Header.Get("X-Echo"); got != "Bearer "+strings.Repeat("*", len(targetToken)) {
		t.Errorf("the 101's header reads %q", got)
	}
	got, _ := bufio.NewReader(br).ReadString('d')
	if want := "Bearer " + strings.Repeat("*", len(targetToken)) + "|end"; got != want {
		t.Errorf("client read %q, want %q", got, want)
	}
	if len(ext) != 0 {
		t.Errorf("origin was offered extensions %q", ext)
	}
}

// BenchmarkScrubReader is the scrubber's cost on a 1 MiB body shaped like the bench's (repeating letters) and on
// JSON full of digits, hex and dashes like the token's own.
func BenchmarkScrubReader(b *testing.B) {
	letters := make([]byte, 1<<20)
	for i := range letters {
		letters[i] = byte('a' + i%26)
	}
	var js bytes.Buffer
	for i := 0; js.Len() < 1<<20; i++ {
		fmt.Fprintf(&js, `{"id":"%08x-4b5a-0f1e","name":"item-%d","tags":["bench","upstream"],"n":%d},`, i*2654435761, i, i*37)
	}
	b.Run("letters", func(b *testing.B) { benchScrub(b, letters) })
	b.Run("json", func(b *testing.B) { benchScrub(b, js.Bytes()[:1<<20]) })
}

func benchScrub(b *testing.B, body []byte) {
	var sc scrubberCache
	s := sc.scrubberFor(TargetCredential{Type: CredentialToken, Token: "bench-upstream-token-0f1e2d3c4b5a"})
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		r := newScrubReader(io.NopCloser(bytes.NewReader(body)), s, nil)
		for {
			if _, err := r.Read(buf); err != nil {
				break
			}
		}
		r.Close()
	}
}
