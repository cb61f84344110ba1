package serviceapi_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/directory/oidctest"
)

// exerciseOIDC runs both OIDC login flows against a real provider, checking every hop that Gatehouse answers
// against the document (the provider's hops are not Gatehouse's to document).
func exerciseOIDC(t *testing.T, cl *client, adm string) {
	gh := cl.gh
	prov := oidctest.Start(t)
	prov.AddUser(oidctest.User{Subject: "sub-olga", Username: "olga", Email: "olga@example.com", Groups: []string{"ops"}})
	prov.LoginAs("olga")
	prov.AllowRedirect(gh.URL + "/auth/api/v1/oidc/callback")
	src := cl.id(exchange{method: "POST", path: "/role-store/api/v1/sources", token: adm, want: 201, json: map[string]any{
		"name": "idp", "enabled": true, "ttl": 0, "connection": map[string]any{"type": "OIDC", "oidc_issuer": prov.Issuer,
			"oidc_client_id": prov.ClientID, "oidc_client_secret": prov.ClientSecret, "tls_trust_anchors": prov.CAPEM}}})
	cl.do(exchange{method: "GET", path: "/auth/api/v1/oidc/sources", want: 200})
	cl.do(exchange{method: "GET", path: "/auth/api/v1/oidc/no-such-source/login", want: 404})
	cl.do(exchange{method: "GET", path: "/auth/api/v1/oidc/" + src + "/login?redirect_uri=https://evil.example/", want: 400})
	cl.do(exchange{method: "GET", path: "/auth/api/v1/oidc/callback?state=unknown&code=x", want: 400})

	pool := x509.NewCertPool()
	pool.AddCert(gh.Server.CA().Root())
	pool.AppendCertsFromPEM([]byte(prov.CAPEM))
	// flow follows redirects by hand from path, checking Gatehouse's answers, until one leaves both servers or
	// is not a redirect; it returns the last answer's status and Location.
	flow := func(path string) (int, *url.URL) {
		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		next, _ := url.Parse(gh.URL + path)
		provURL, _ := url.Parse(prov.Issuer)
		ghURL, _ := url.Parse(gh.URL)
		for range 10 {
			req, _ := http.NewRequest("GET", next.String(), nil)
			resp, err := browser.Do(req)
			if err != nil {
				t.Fatalf("GET %s: %v", next, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if next.Host == ghURL.Host {
				reqErr, respErr := cl.c.check(req, nil, resp.StatusCode, resp.Header, b)
				if reqErr != nil || respErr != nil {
					t.Errorf("GET %s -> %d: request: %v; response: %v; body %s", next.Path, resp.StatusCode, reqErr, respErr, b)
				}
			}
			loc, err := resp.Location()
			if resp.StatusCode != http.StatusFound || err != nil {
				return resp.StatusCode, nil
			}
			if loc.Host != ghURL.Host && loc.Host != provURL.Host {
				return resp.StatusCode, loc
			}
			next = loc
		}
		t.Fatalf("too many redirects from %s", path)
		return 0, nil
	}
	if status, _ := flow("/auth/api/v1/oidc/" + src + "/login"); status != http.StatusOK {
		t.Errorf("web OIDC login ended with %d, want 200 and tokens", status)
	}
	verifier := oauth2.GenerateVerifier()
	redirect := "http://127.0.0.1:9/callback"
	status, to := flow("/auth/api/v1/oidc/" + src + "/login?" + url.Values{"redirect_uri": {redirect}, "state": {"s1"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}}.Encode())
	if status != http.StatusFound || to == nil || to.Query().Get("code") == "" {
		t.Fatalf("loopback OIDC login ended with %d %v, want a redirect with a code", status, to)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {"gatehouse-cli"}, "code": {to.Query().Get("code")},
		"code_verifier": {verifier}, "redirect_uri": {redirect}}
	cl.do(exchange{method: "POST", path: "/auth/api/v1/oauth/token", form: form, want: 200})
	cl.do(exchange{method: "POST", path: "/auth/api/v1/oauth/token", form: form, want: 400})
}
