package e2e_test

import (
	"crypto/tls"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestWebProxyTLS: with web_proxy.transport_security tls, clients reach the proxy itself over TLS (an HTTPS
// proxy: curl --proxy https://, Python requests with HTTPS_PROXY=https://) and plain connections to the proxy are
// refused; the proxy's certificate follows host_certification_method. web_proxy.enabled false refuses requests.
func TestWebProxyTLS(t *testing.T) {
	const py = "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import requests").CombinedOutput(); err != nil {
		t.Fatalf("%s with python3-requests is required (scripts/test.sh installs it): %v: %s", py, err, out)
	}
	f := newFixture(t, testserver.Options{})
	a := newCfgAdmin(t, f.gh)
	c := f.credential(f.alpha, "https-proxy", nil)
	httpsProxy := "https://" + f.gh.Server.ProxyAddr()
	plainProxy := "http://" + f.gh.Server.ProxyAddr()
	auth := []string{"-H", "Authorization: Bearer " + c.Secret}

	a.editDefault(func(b map[string]any) {
		b["web_proxy"] = map[string]any{"enabled": true, "transport_security": map[string]any{"selection": "tls"}}
	})
	t.Run("curl over an HTTPS proxy", func(t *testing.T) {
		for _, o := range []*origin{f.https, f.http} {
			o.Reset()
			body, st := curl(t, append([]string{"--proxy", httpsProxy, "--proxy-cacert", f.proxyCAFile, "--cacert", f.proxyCAFile}, append(auth, o.URL+"/api/items")...)...)
			if st != http.StatusOK || !strings.Contains(body, `"origin":"e2e"`) {
				t.Fatalf("%s: %d %s", o.URL, st, body)
			}
			checkInjected(t, only(t, o), alphaToken, c.Secret)
		}
	})
	t.Run("plain connection to the proxy is refused", func(t *testing.T) {
		f.http.Reset()
		body, st := curl(t, append([]string{"--proxy", plainProxy}, append(auth, f.http.URL+"/api/items")...)...)
		// The client gets the neutral refusal; its request id finds the reason in the log.
		if st != http.StatusForbidden || !deniedFor(f, body, "requires TLS to the proxy") {
			t.Fatalf("got %d %s, want 403 whose log line names web_proxy", st, body)
		}
		wantOrigin(t, f.http, 0, "plain connection to a TLS web proxy")
		if _, st := curl(t, append([]string{"--proxy", plainProxy, "--cacert", f.proxyCAFile}, append(auth, f.https.URL+"/api/items")...)...); st != http.StatusForbidden {
			t.Fatalf("CONNECT over plain TCP: %d, want 403", st)
		}
	})
	t.Run("python requests with HTTPS_PROXY=https://", func(t *testing.T) {
		script := filepath.Join(t.TempDir(), "client.py")
		if err := os.WriteFile(script, []byte(pythonScript), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, o := range []*origin{f.https, f.http} {
			o.Reset()
			cmd := exec.Command(py, script, "GET", o.URL+"/api/items")
			cmd.Env = append(os.Environ(), "HTTPS_PROXY="+httpsProxy, "HTTP_PROXY="+httpsProxy, "https_proxy="+httpsProxy, "http_proxy="+httpsProxy,
				"NO_PROXY=", "no_proxy=", "ALL_PROXY=", "all_proxy=", "REQUESTS_CA_BUNDLE="+f.proxyCAFile, "CURL_CA_BUNDLE=", "GATEHOUSE_SECRET="+c.Secret)
			var stderr strings.Builder
			cmd.Stderr = &stderr // urllib3 warns there about http:// destinations through an HTTPS proxy
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("python: %v: %s %s", err, out, stderr.String())
			}
			status, body, _ := strings.Cut(string(out), "\n")
			if status != strconv.Itoa(http.StatusOK) {
				t.Fatalf("%s: status %s: %s", o.URL, status, body)
			}
			checkInjected(t, only(t, o), alphaToken, c.Secret)
		}
	})
	t.Run("client_tls_min_version applies to the proxy's TLS", func(t *testing.T) {
		sp := a.create(cfgSettings, map[string]any{"name": "tls13", "idle_timeout": 900, "session_timeout": 0,
			"client_tls_min_version": "TLSv1_3", "server_tls_min_version": "TLSv1_2"})
		a.editDefault(func(b map[string]any) { b["policies"].(map[string]any)["settings"] = sp })
		defer a.editDefault(func(b map[string]any) { b["policies"].(map[string]any)["settings"] = "-1" })
		tls12 := func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }
		f.http.Reset()
		// A plain http:// target: the only TLS is the client's connection to the proxy.
		if _, _, _, err := proxiedGet(t, httpsProxy, f.http.URL+"/api/items", c.Secret, f.proxyPool, tls12); err == nil {
			t.Fatal("a TLS 1.2 client reached a proxy whose policy requires TLS 1.3")
		}
		wantOrigin(t, f.http, 0, "TLS 1.2 client to a TLS 1.3 proxy")
		if st, body, _, err := proxiedGet(t, httpsProxy, f.http.URL+"/api/items", c.Secret, f.proxyPool, nil); err != nil || st != http.StatusOK {
			t.Fatalf("TLS 1.3 client: %d %s %v", st, body, err)
		}
		wantOrigin(t, f.http, 1, "TLS 1.3 client")
	})
	t.Run("the proxy certificate follows host_certification_method", func(t *testing.T) {
		idCert := f.ca.leaf(t) // 127.0.0.1, issued by the origins' CA, not Gatehouse's
		id := a.create(cfgIdentities, map[string]any{"name": "proxy-cert", "certificate": certPEM(idCert), "private_key": keyPEM(t, idCert.PrivateKey)})
		a.editDefault(func(b map[string]any) {
			b["web_proxy"] = map[string]any{"enabled": true, "transport_security": map[string]any{"selection": "tls",
				"host_certification_method": map[string]any{"selection": "fix", "x509_identity": id}}}
		})
		caFile := writeTemp(t, "origin-ca.pem", f.ca.pem)
		f.http.Reset()
		body, st := curl(t, append([]string{"--proxy", httpsProxy, "--proxy-cacert", caFile}, append(auth, f.http.URL+"/api/items")...)...)
		if st != http.StatusOK {
			t.Fatalf("trusting the identity's CA: %d %s", st, body)
		}
		wantOrigin(t, f.http, 1, "request through the fixed-certificate proxy")
		// Gatehouse's CA no longer vouches for the proxy: curl refuses the proxy's certificate (exit 60, no status).
		cmd := exec.Command("curl", "--silent", "--max-time", "10", "--proxy", httpsProxy, "--proxy-cacert", f.proxyCAFile, f.http.URL+"/api/items")
		if err := cmd.Run(); err == nil {
			t.Fatal("curl trusting only Gatehouse's CA accepted the fixed proxy certificate")
		}
	})
	t.Run("web_proxy disabled", func(t *testing.T) {
		a.editDefault(func(b map[string]any) {
			b["web_proxy"] = map[string]any{"enabled": false, "transport_security": map[string]any{"selection": "disabled"}}
		})
		f.http.Reset()
		body, st := curl(t, append([]string{"--proxy", plainProxy}, append(auth, f.http.URL+"/api/items")...)...)
		if st != http.StatusForbidden || !deniedFor(f, body, "web_proxy is disabled") {
			t.Fatalf("got %d %s, want 403 whose log line says web_proxy is disabled", st, body)
		}
		wantOrigin(t, f.http, 0, "web proxy disabled")
		// TLS to the proxy is refused at the handshake when no policy of the client uses it.
		if err := exec.Command("curl", "--silent", "--max-time", "10", "--proxy", httpsProxy, "--proxy-insecure", f.http.URL+"/api/items").Run(); err == nil {
			t.Fatal("TLS to the proxy accepted with no TLS web proxy policy")
		}
		wantOrigin(t, f.http, 0, "refused TLS to the proxy")
	})
}
