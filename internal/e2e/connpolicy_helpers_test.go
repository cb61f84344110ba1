package e2e_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The configuration API collections of certificates that connection policies refer to.
const (
	cfgTrustedCAs  = "/api/configuration/policies/trusted_ca_lists"
	cfgSigningCAs  = "/api/configuration/policies/signing_cas"
	cfgIdentities  = "/api/configuration/policies/x509_identities"
	cfgDefaultConn = cfgConnections + "/-1"
)

// keyPEM is the PKCS #8 PEM of a private key.
func keyPEM(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// certPEM is the PEM of a tls.Certificate's chain.
func certPEM(c tls.Certificate) string {
	var b strings.Builder
	for _, der := range c.Certificate {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	return b.String()
}

// poolOf is a pool holding the PEM certificates.
func poolOf(t *testing.T, pems ...string) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	for _, s := range pems {
		if !p.AppendCertsFromPEM([]byte(s)) {
			t.Fatalf("no certificate in %q", s)
		}
	}
	return p
}

// writeTemp writes content to a file in a test directory and returns its path.
func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// editDefault changes the built-in connection policy and commits.
func (a *cfgAdmin) editDefault(change func(b map[string]any)) {
	a.t.Helper()
	a.edit(cfgDefaultConn, change)
	a.commit()
}

// refused sends body and fails unless the answer is a 400 with code naming field; it returns the message.
func (a *cfgAdmin) refused(method, path string, body any, code, field string) string {
	a.t.Helper()
	var e struct {
		Error struct {
			Code, Message string
			Details       struct{ Field string }
		}
	}
	if err := json.Unmarshal(a.call(method, path, body, http.StatusBadRequest), &e); err != nil {
		a.t.Fatal(err)
	}
	if e.Error.Code != code || e.Error.Details.Field != field {
		a.t.Fatalf("%s %s: error %+v, want code %s naming %s", method, path, e.Error, code, field)
	}
	return e.Error.Message
}

// proxiedGet sends one GET through the proxy at proxyURL, trusting roots for the target (and the proxy when it is
// an https:// proxy), and returns the status, body and the leaf the client saw; err is a transport failure.
func proxiedGet(t *testing.T, proxyURL, rawURL, secret string, roots *x509.CertPool, tweak func(*tls.Config)) (int, string, *x509.Certificate, error) {
	t.Helper()
	pu, err := url.Parse(proxyURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: roots}
	if tweak != nil {
		tweak(cfg)
	}
	tr := &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: cfg, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", rawURL, nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var leaf *x509.Certificate
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		leaf = resp.TLS.PeerCertificates[0]
	}
	return resp.StatusCode, string(b), leaf, nil
}

// errorCode is the error_code of a proxy error body.
func errorCode(body string) string {
	var e struct {
		Code string `json:"error_code"`
	}
	json.Unmarshal([]byte(body), &e)
	return e.Code
}
