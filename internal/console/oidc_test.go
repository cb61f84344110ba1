package console_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/directory/oidctest"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestOIDCSignIn pins single sign-on through the API's OIDC login: the sign-in page offers the enabled source, the
// browser goes to the provider and back, and the console opens a session for the user the provider named. An
// answer that does not carry the state this browser started with is refused.
func TestOIDCSignIn(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	prov := oidctest.Start(t)
	prov.AddUser(oidctest.User{Subject: "sub-olga", Username: "olga", Email: "olga@example.com"})
	prov.LoginAs("olga")
	prov.AllowRedirect(gh.URL + "/auth/api/v1/oidc/callback")
	src := gh.Create("/role-store/api/v1/sources", adm, map[string]any{"name": "idp", "enabled": true, "ttl": 0,
		"connection": map[string]any{"type": "OIDC", "oidc_issuer": prov.Issuer, "oidc_client_id": prov.ClientID,
			"oidc_client_secret": prov.ClientSecret, "tls_trust_anchors": prov.CAPEM}})

	pool := x509.NewCertPool()
	pool.AddCert(gh.Server.CA().Root())
	pool.AppendCertsFromPEM([]byte(prov.CAPEM))
	w := newWeb(t, gh.URL, pool)
	_, page, _ := w.get("/login")
	m := regexp.MustCompile(`href="(/login/oidc/[^"]+)"`).FindStringSubmatch(page)
	if m == nil || m[1] != "/login/oidc/"+src {
		t.Fatalf("sign-in page offers %v, want /login/oidc/%s", m, src)
	}
	// Follow the redirects as a browser would, through Gatehouse and the provider.
	next, _ := url.Parse(gh.URL + m[1])
	for i := 0; ; i++ {
		if i == 12 {
			t.Fatal("too many redirects")
		}
		resp, err := w.client.Get(next.String())
		if err != nil {
			t.Fatalf("GET %s: %v", next, err)
		}
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("GET %s = %d without a redirect", next.Path, resp.StatusCode)
		}
		if loc.Path == "/access" {
			break
		}
		next = loc
	}
	st, body, _ := w.get("/access")
	if st != http.StatusOK || !strings.Contains(body, `<span class="who">olga</span>`) {
		t.Errorf("after single sign-on /access = %d, signed in as olga: %v", st, strings.Contains(body, "olga"))
	}

	// A callback with a code but another browser's state is refused, and signs nobody in.
	jar, _ := cookiejar.New(nil)
	other := &web{t: t, base: gh.URL, client: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if st, body, _ := other.get("/login/oidc/callback?state=forged&code=x"); st != http.StatusBadRequest || !strings.Contains(body, "does not belong") {
		t.Errorf("forged callback = %d", st)
	}
	if other.signedIn() {
		t.Error("a forged callback signed the browser in")
	}
}
