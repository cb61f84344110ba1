package proxy

import (
	"net/http"
	"testing"
)

// TestInsecureSkipVerify: a target's tls_insecure_skip_verify is what lets an origin with a certificate nobody
// trusts through; without it the same origin is refused as UPSTREAM_TLS and never sees the request.
func TestInsecureSkipVerify(t *testing.T) {
	for _, tc := range []struct {
		name     string
		insecure bool
		want     int
	}{{"verified", false, http.StatusBadGateway}, {"skip verify", true, http.StatusOK}} {
		t.Run(tc.name, func(t *testing.T) {
			st := newSetup(t, true, nil, func(_ *Server, tg *Target) {
				tg.TrustAnchorsPEM, tg.InsecureSkipVerify = "", tc.insecure
			})
			req, _ := http.NewRequest(http.MethodGet, st.origin.URL+"/v1/items", nil)
			resp, err := proxyClient(t, st.addr, st.ca, false).Do(bearer(req))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if got := st.origin.lastHeader() != nil; got != tc.insecure {
				t.Fatalf("origin reached: %v, want %v", got, tc.insecure)
			}
		})
	}
}
