package e2e_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// benchBody is the origin's answer: a small JSON document, as an API client mostly gets.
const benchBody = `{"id":42,"name":"widget","tags":["a","b","c"],"owner":{"team":"platform","contact":"ops@example.com"},"enabled":true}`

// benchBlob is the large answer: 1 MiB of letters, like the bench command's 1 MiB workload (text, so the trail
// index reads what the trail keeps of it).
var benchBlob = []byte(strings.Repeat("abcdefghijklmnopqrstuvwxyz", 1<<20/26+1)[:1<<20])

// BenchmarkRequestPath is the whole in-process request path of one small GET on a keep-alive connection (and, as
// recorded-h2, one stream of an HTTP/2 connection inside the tunnel): a real
// Go client through CONNECT and TLS interception, proxy-credential authentication, the policy decision, the API
// session, credential injection, forwarding over TLS to an httptest origin, the trail record (HMAC chain) and the
// trail index, the access log and the metrics. allocs/op is the figure the README keeps (it counts the client's
// and the origin's allocations too, which are the same before and after a change to Gatehouse).
func BenchmarkRequestPath(b *testing.B) {
	for _, bc := range []struct {
		name  string
		audit bool
		path  string
		h2    bool
	}{{"recorded", true, "/small", false}, {"unrecorded", false, "/small", false}, {"recorded-1mib", true, "/blob", false},
		{"unrecorded-1mib", false, "/blob", false}, {"recorded-h2", true, "/small", true}} {
		b.Run(bc.name, func(b *testing.B) {
			client, origin := benchSetup(b, bc.audit)
			if bc.h2 {
				// HTTP/2 inside the tunnel, as kubectl and Go clients speak it.
				client.Transport.(*http.Transport).ForceAttemptHTTP2 = true
			}
			target, want := origin+bc.path, benchBody
			if bc.path == "/blob" {
				want = string(benchBlob)
			}
			get := func() {
				req, _ := http.NewRequest("GET", target, nil)
				req.Header.Set("Authorization", "Bearer "+client.secret)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || string(body) != want {
					b.Fatalf("status %d: %.200s", resp.StatusCode, body)
				}
				if bc.h2 != (resp.ProtoMajor == 2) {
					b.Fatalf("the client spoke %s", resp.Proto)
				}
			}
			get() // opens the tunnel, the upstream connection and the session
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				get()
			}
		})
	}
}

// BenchmarkRequestDirect is the same client and origin without Gatehouse: what BenchmarkRequestPath counts that
// is not Gatehouse's (subtract it to see Gatehouse's own allocations per request).
func BenchmarkRequestDirect(b *testing.B) {
	origin := benchOrigin(b)
	client := origin.Client()
	get := func() {
		req, _ := http.NewRequest("GET", origin.URL+"/small", nil)
		req.Header.Set("Authorization", "Bearer "+alphaToken)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != benchBody {
			b.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	}
	get()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		get()
	}
}

// benchOrigin is the API behind the target: it accepts only the target's credential.
func benchOrigin(b *testing.B) *httptest.Server {
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+alphaToken {
			http.Error(w, "wrong credential", http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/blob" {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(benchBlob)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, benchBody)
	}))
	b.Cleanup(origin.Close)
	return origin
}

type benchClient struct {
	*http.Client
	secret string
}

// benchSetup starts Gatehouse with a user, a role, a target for an origin (audited or not) and a credential, and
// returns a client configured as users configure theirs, and the origin's URL.
func benchSetup(b *testing.B, audit bool) (*benchClient, string) {
	b.Helper()
	origin := benchOrigin(b)
	originCA := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: origin.Certificate().Raw}))
	host := strings.TrimPrefix(origin.URL, "https://")

	gh := testserver.Start(b, testserver.Options{Configure: func(c *config.Config) { c.LogLevel = "info" }})
	adm := gh.AdminToken()
	role := gh.Create(rolesAPI+"/roles", adm, map[string]any{"name": "bench", "permissions": []string{"api-proxy-credentials-own"}})
	user := gh.Create(usersAPI+"/users", adm, map[string]any{"username": "bench", "password": userPassword, "enabled": true})
	gh.JSON("PUT", rolesAPI+"/users/"+user+"/roles", adm, []map[string]string{{"id": role}}, http.StatusOK, nil)
	target := gh.Create(proxyAPI+"/api-targets", adm, map[string]any{
		"name": "origin", "roles": []map[string]string{{"id": role}}, "audit_enabled": audit, "tls_trust_anchors": originCA,
		"authorized_endpoints": []map[string]any{
			{"host": host, "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/small", "/blob"}},
		},
		"target_credential": map[string]any{"type": "token", "bearer_token": alphaToken},
	})
	credPath := proxyAPI + "/users/" + user + "/client-credentials"
	cred := gh.Create(credPath, adm, map[string]any{"name": "bench", "target": map[string]string{"id": target}})
	status, secret := gh.Do("GET", credPath+"/"+cred+"/secret", gh.Token("bench", userPassword), nil)
	if status != http.StatusOK {
		b.Fatalf("secret: %d %s", status, secret)
	}
	var conf struct {
		Chain string `json:"ca_certificate_chain"`
	}
	gh.JSON("GET", proxyAPI+"/conf", adm, nil, http.StatusOK, &conf)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(conf.Chain)) {
		b.Fatal("no proxy CA in /conf")
	}
	tr := &http.Transport{
		Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: gh.Server.ProxyAddr()}),
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}
	b.Cleanup(tr.CloseIdleConnections)
	return &benchClient{Client: &http.Client{Transport: tr}, secret: string(secret)}, origin.URL
}
