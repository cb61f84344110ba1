package extender_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/extender"
	"github.com/gatehouse-dev/gatehouse/internal/testbinary"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

type issuedCert struct {
	ID          string `json:"id"`
	Certificate string `json:"certificate"`
	PrivateKey  string `json:"private_key"`
	Info        struct {
		Serial      string `json:"serial"`
		Fingerprint string `json:"fingerprint_sha256"`
	} `json:"certificate_info"`
}

type auditEvent struct {
	Action        string         `json:"action"`
	ObjectID      string         `json:"object_id"`
	SourceAddress string         `json:"source_address"`
	Outcome       string         `json:"outcome"`
	Diff          map[string]any `json:"diff"`
}

// refusedConnects lists the audit events of refused extender connects, newest first.
func refusedConnects(t *testing.T, gh *testserver.Instance, adm string) []auditEvent {
	t.Helper()
	var l struct{ Items []auditEvent }
	gh.JSON("GET", "/audit/api/v1/events?"+url.Values{"object_type": {"extender"}, "action": {"connect"}}.Encode(), adm, nil, http.StatusOK, &l)
	return l.Items
}

// TestExtenderClientCertificate: an extender created with a client certificate runs the agent binary with
// --cert/--key over real TLS and carries requests; the certificate's key is shown once and stored nowhere; a
// reissue revokes the old certificate, closing its session, and its reconnect is refused and audited with the
// agent's address and the reason.
func TestExtenderClientCertificate(t *testing.T) {
	ns := newNetns(t)
	origin := startPrivateOrigin(t, ns, privateHost)
	bin := testbinary.Build(t)
	gh := testserver.Start(t, testserver.Options{Configure: func(c *config.Config) { c.APIListen = ns.hostIP + ":0" }})
	adm := gh.AdminToken()
	caFile := writeFile(t, "gateway-ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: gh.Server.CA().Root().Raw})))
	gateway := "https://" + gh.Server.APIAddr()

	var issued issuedCert
	gh.JSON("POST", proxyAPI+"/extenders", adm, map[string]any{"name": "site-d-1", "routing_prefix": "site-d", "authentication": "certificate"},
		http.StatusCreated, &issued)
	if !strings.Contains(issued.Certificate, "BEGIN CERTIFICATE") || !strings.Contains(issued.PrivateKey, "PRIVATE KEY") || issued.Info.Fingerprint == "" {
		t.Fatalf("create answer: %+v", issued)
	}
	client, secret := privateAccess(t, gh, adm, origin, "site-d", gh.Server.ProxyAddr())
	target := "https://" + privateHost + "/v1/items"
	certFile, keyFile := writeFile(t, "ext.crt", issued.Certificate), writeFile(t, "ext.key", issued.PrivateKey)
	connected := func(want bool) {
		t.Helper()
		var v extenderView
		for range 300 {
			gh.JSON("GET", proxyAPI+"/extenders/"+issued.ID, adm, nil, http.StatusOK, &v)
			if v.Status.Connected == want {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("extender connected never became %v", want)
	}

	agent := startAgent(t, bin, ns, gateway, caFile, "", "--cert", certFile, "--key", keyFile)
	connected(true)
	t.Run("requests reach the origin through the certificate extender", func(t *testing.T) {
		before := origin.hits.Load()
		if status, body := get(t, client, target, secret); status != http.StatusOK || origin.hits.Load() != before+1 {
			t.Fatalf("GET: %d %s", status, body)
		}
	})
	t.Run("the private key is shown once and stored nowhere", func(t *testing.T) {
		keyBody := strings.TrimSpace(strings.Split(issued.PrivateKey, "-----")[2])
		for _, p := range []string{proxyAPI + "/extenders", proxyAPI + "/extenders/" + issued.ID, "/audit/api/v1/events"} {
			if _, b := gh.Do("GET", p, adm, nil); strings.Contains(string(b), keyBody[:40]) || strings.Contains(string(b), "PRIVATE KEY") {
				t.Errorf("%s shows the key", p)
			}
		}
		filepath.Walk(gh.Cfg.DataDir, func(path string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() {
				if b, _ := os.ReadFile(path); strings.Contains(string(b), keyBody[:40]) {
					t.Errorf("%s holds the extender's key", path)
				}
			}
			return nil
		})
	})
	t.Run("the certificate extender has no token and keeps its authentication", func(t *testing.T) {
		for _, c := range []struct {
			method, path string
			body         any
			code         string
		}{
			{"POST", proxyAPI + "/extenders/" + issued.ID + "/token", nil, "BAD_REQUEST"},
			{"PUT", proxyAPI + "/extenders/" + issued.ID, map[string]any{"authentication": "token"}, "NOT_SUPPORTED"},
		} {
			status, b := gh.Do(c.method, c.path, adm, c.body)
			if status != http.StatusBadRequest || !strings.Contains(string(b), c.code) || !strings.Contains(string(b), `"property":"authentication"`) {
				t.Errorf("%s %s: %d %s, want 400 %s naming authentication", c.method, c.path, status, b, c.code)
			}
		}
	})
	t.Run("a reissue revokes the old certificate: its session closes and its reconnect is refused and audited", func(t *testing.T) {
		var again issuedCert
		gh.JSON("POST", proxyAPI+"/extenders/"+issued.ID+"/certificate", adm, nil, http.StatusOK, &again)
		if again.Info.Fingerprint == "" || again.Info.Fingerprint == issued.Info.Fingerprint {
			t.Fatalf("reissue: %+v", again.Info)
		}
		if !agent.exited(30*time.Second) || !strings.Contains(agent.out.String(), "refused") {
			t.Fatalf("the agent with the revoked certificate: %s", agent.out.String())
		}
		ev := refusedConnects(t, gh, adm)
		if len(ev) == 0 || ev[0].Diff["reason"] != "revoked certificate" || ev[0].Diff["credential"] != "certificate" ||
			ev[0].SourceAddress != ns.nsIP || ev[0].Outcome != "failure" || ev[0].ObjectID != issued.ID {
			b, _ := json.Marshal(ev)
			t.Fatalf("refused connect events: %s", b)
		}
		connected(false)
		startAgent(t, bin, ns, gateway, caFile, "", "--cert", writeFile(t, "new.crt", again.Certificate), "--key", writeFile(t, "new.key", again.PrivateKey))
		connected(true)
	})
}

// TestRefusedConnectsAreAudited: unknown, revoked and disabled credentials are refused, and each refusal is an
// audit event with the agent's address and the reason; repeats from one source for one reason within the interval
// are held back from the audit trail and the log alike.
func TestRefusedConnectsAreAudited(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	pool := x509.NewCertPool()
	pool.AddCert(gh.Server.CA().Root())
	connect := func(token string) error {
		_, err := (&extender.Agent{Gateway: gh.URL, Token: token, RootCAs: pool}).Connect(context.Background())
		return err
	}
	var live, off extenderView
	gh.JSON("POST", proxyAPI+"/extenders", adm, map[string]any{"name": "live", "routing_prefix": "p"}, http.StatusCreated, &live)
	gh.JSON("POST", proxyAPI+"/extenders", adm, map[string]any{"name": "off", "routing_prefix": "p", "enabled": false}, http.StatusCreated, &off)
	revoked := live.Token
	gh.JSON("POST", proxyAPI+"/extenders/"+live.ID+"/token", adm, nil, http.StatusOK, &live)

	var re *extender.RefusedError
	for i, tok := range []string{"gx_unknown-token", revoked, "gx_unknown-token"} {
		if err := connect(tok); !errors.As(err, &re) {
			t.Fatalf("attempt %d: %v, want refused", i, err)
		}
	}
	if err := connect(off.Token); !errors.As(err, &re) {
		t.Fatalf("disabled extender: %v, want refused", err)
	}
	ev := refusedConnects(t, gh, adm)
	if len(ev) != 2 {
		b, _ := json.Marshal(ev)
		t.Fatalf("%d refused-connect events, want 2 (one per source and reason): %s", len(ev), b)
	}
	disabled, unknown := ev[0], ev[1]
	if unknown.Diff["reason"] != "unknown or revoked token" || unknown.SourceAddress != "127.0.0.1" || unknown.Outcome != "failure" {
		t.Errorf("unknown token event: %+v", unknown)
	}
	if disabled.Diff["reason"] != "extender disabled" || disabled.ObjectID != off.ID || disabled.Diff["extender"] != "off" ||
		disabled.SourceAddress != "127.0.0.1" {
		t.Errorf("disabled extender event: %+v", disabled)
	}
	if n := strings.Count(gh.Logs.String(), "extender connect refused"); n != 2 {
		t.Errorf("%d log lines for 4 refusals, want 2", n)
	}
	for _, e := range ev {
		b, _ := json.Marshal(e)
		for _, tok := range []string{revoked, off.Token, live.Token} {
			if strings.Contains(string(b), tok) {
				t.Errorf("an audit event shows a token: %s", b)
			}
		}
	}
	if strings.Contains(gh.Logs.String(), off.Token) || strings.Contains(gh.Logs.String(), revoked) {
		t.Error("the log shows a token")
	}
}
