package demoapi

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestDemoAPI: the certificate verifies for its name against the CA it hands out, and only requests with the
// expected token get an answer, so a request that bypassed Gatehouse (which injects the token) is refused.
func TestDemoAPI(t *testing.T) {
	cert, caPEM, err := Certificates("demo.gatehouse.test")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(Handler("tok-123"))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA in the PEM")
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "demo.gatehouse.test"}}}
	for _, tc := range []struct {
		path, auth string
		want       int
	}{
		{"/api/hello", "Bearer tok-123", 200},
		{"/api/hello", "", 401},
		{"/api/hello", "Bearer ghp_a-proxy-secret", 401},
		{"/api/v1/namespaces/default/pods", "Bearer tok-123", 200},
		{"/nothing", "Bearer tok-123", 404},
	} {
		req, _ := http.NewRequest("GET", srv.URL+tc.path, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err) // includes a certificate that does not verify for the name
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s with %q: %d %s, want %d", tc.path, tc.auth, resp.StatusCode, b, tc.want)
		}
	}
}
