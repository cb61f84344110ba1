package serviceapi_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/serviceapi"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

type credView struct {
	ID            string     `json:"id"`
	UserID        string     `json:"user_id"`
	Name          string     `json:"name"`
	Comment       string     `json:"comment"`
	Target        ref        `json:"target"`
	NotBefore     time.Time  `json:"not_before"`
	NotAfter      time.Time  `json:"not_after"`
	SourceAddress []string   `json:"source_address"`
	Enabled       bool       `json:"enabled"`
	LastUsed      *time.Time `json:"last_used"`
}

const ownCreds = proxyPath + "/users/current/client-credentials"

func userCreds(id string) string { return proxyPath + "/users/" + id + "/client-credentials" }

// credSetup is a target alice may use (through role devs), one she may not, and users alice and bob holding
// api-proxy-credentials-own.
type credSetup struct {
	gh                  *testserver.Instance
	adm                 string
	alice, aliceTok     string
	bob, bobTok         string
	target, otherTarget string
}

func newCredSetup(t *testing.T, gh *testserver.Instance) *credSetup {
	s := &credSetup{gh: gh, adm: gh.AdminToken()}
	var devs, bobRole string
	s.alice, s.aliceTok, devs = newUserWithRole(t, gh, s.adm, "alice", auth.APIProxyCredentialsOwn)
	s.bob, s.bobTok, bobRole = newUserWithRole(t, gh, s.adm, "bob", auth.APIProxyCredentialsOwn)
	body := targetBody("kube", devs, bobRole)
	body["authorized_endpoints"] = []map[string]any{{"host": "kube.example.com:6443", "protocols": []string{"https"}, "methods": []string{"*"}, "paths": []string{"/**"}}}
	s.target = gh.Create(targetsPath, s.adm, body)
	s.otherTarget = gh.Create(targetsPath, s.adm, targetBody("vault", gh.Create(rolesPath, s.adm, map[string]any{"name": "vault-users"})))
	return s
}

func TestCredentialsOwnership(t *testing.T) {
	forEachDB(t, func(t *testing.T, gh *testserver.Instance) {
		s := newCredSetup(t, gh)
		gh.JSON("PUT", proxyPath+"/settings", s.adm, map[string]any{"max_credential_validity": 7200}, http.StatusOK, nil)

		start := time.Now()
		id := gh.Create(ownCreds, s.aliceTok, map[string]any{"name": "laptop", "target": map[string]string{"id": s.target}, "source_address": []string{"10.1.2.3", "192.168.0.0/16", "2001:db8::/32"}})
		var c credView
		gh.JSON("GET", ownCreds+"/"+id, s.aliceTok, nil, http.StatusOK, &c)
		if c.UserID != s.alice || c.Name != "laptop" || c.Target != (ref{s.target, "kube"}) || !c.Enabled ||
			!cmp.Equal(c.SourceAddress, []string{"10.1.2.3", "192.168.0.0/16", "2001:db8::/32"}) || c.LastUsed != nil {
			t.Errorf("GET: %+v", c)
		}
		// Defaults: valid from now for max_credential_validity.
		if c.NotBefore.Before(start.Add(-time.Minute)) || c.NotBefore.After(time.Now().Add(time.Minute)) {
			t.Errorf("not_before %v is not about now (%v)", c.NotBefore, start)
		}
		if got := c.NotAfter.Sub(c.NotBefore); got != 2*time.Hour {
			t.Errorf("default window %v, want the maximum validity 2h", got)
		}

		// Only targets whose roles the user holds; unknown targets are a bad reference.
		checkBad(t, gh, "POST", ownCreds, s.aliceTok, []badCase{
			{"target without alice's role", map[string]any{"name": "x", "target": map[string]string{"id": s.otherTarget}}, 403, "target.id"},
			{"unknown target", map[string]any{"name": "x", "target": map[string]string{"id": "nope"}}, 400, "target.id"},
			{"no target", map[string]any{"name": "x"}, 400, "target.id"},
		})
		// A manager may create for anyone, for any target.
		gh.Create(userCreds(s.alice), s.adm, map[string]any{"name": "by-admin", "target": map[string]string{"id": s.otherTarget}})

		// Bob cannot reach alice's credential through his own path or hers.
		for _, p := range []string{ownCreds + "/" + id, ownCreds + "/" + id + "/secret"} {
			gh.JSON("GET", p, s.bobTok, nil, http.StatusNotFound, nil)
		}
		gh.JSON("PUT", ownCreds+"/"+id, s.bobTok, map[string]any{"comment": "mine now"}, http.StatusNotFound, nil)
		gh.JSON("DELETE", ownCreds+"/"+id, s.bobTok, nil, http.StatusNotFound, nil)
		for _, p := range []string{userCreds(s.alice), userCreds(s.alice) + "/" + id, userCreds(s.alice) + "/" + id + "/secret"} {
			gh.JSON("GET", p, s.bobTok, nil, http.StatusForbidden, nil)
		}
		// Alice may use her id in place of "current".
		gh.JSON("GET", userCreds(s.alice)+"/"+id, s.aliceTok, nil, http.StatusOK, nil)
		// The manager reaches it under alice, but not under bob.
		gh.JSON("GET", userCreds(s.alice)+"/"+id, s.adm, nil, http.StatusOK, nil)
		gh.JSON("GET", userCreds(s.bob)+"/"+id, s.adm, nil, http.StatusNotFound, nil)
		gh.JSON("GET", userCreds("no-such-user"), s.adm, nil, http.StatusNotFound, nil)
		gh.JSON("GET", ownCreds+"/no-such-id", s.aliceTok, nil, http.StatusNotFound, nil)

		var l struct {
			Count int        `json:"count"`
			Items []credView `json:"items"`
		}
		gh.JSON("GET", ownCreds, s.aliceTok, nil, http.StatusOK, &l)
		if l.Count != 2 || len(l.Items) != 2 || l.Items[0].Name != "by-admin" || l.Items[1].Name != "laptop" {
			t.Errorf("alice's list: %+v", l)
		}
		gh.JSON("GET", ownCreds, s.bobTok, nil, http.StatusOK, &l)
		if l.Count != 0 || len(l.Items) != 0 {
			t.Errorf("bob's list: %+v", l)
		}
		gh.JSON("GET", ownCreds+"?sortkey=not_after&sortdir=desc&limit=1&filter=lap", s.aliceTok, nil, http.StatusOK, &l)
		if l.Count != 1 || l.Items[0].ID != id {
			t.Errorf("filtered list: %+v", l)
		}
		checkListParams(t, gh, ownCreds, s.aliceTok)

		// An API client has no "current" user.
		cid := gh.Create(clientsPath, s.adm, map[string]any{"name": "bot", "roles": []map[string]string{{"id": gh.Create(rolesPath, s.adm, map[string]any{"name": "bots", "permissions": []string{auth.APIProxyCredentialsOwn}})}}})
		var client apiClientView
		gh.JSON("GET", clientsPath+"/"+cid, s.adm, nil, http.StatusOK, &client)
		_, botTok := clientToken(t, gh, client)
		checkBad(t, gh, "GET", ownCreds, botTok, []badCase{{"api client current", nil, 400, "user_id"}})

		gh.JSON("DELETE", ownCreds+"/"+id, s.aliceTok, nil, http.StatusOK, nil)
		gh.JSON("GET", ownCreds+"/"+id, s.aliceTok, nil, http.StatusNotFound, nil)
	})
}

func TestCredentialsValidation(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	s := newCredSetup(t, gh)
	gh.JSON("PUT", proxyPath+"/settings", s.adm, map[string]any{"max_credential_validity": 86400}, http.StatusOK, nil)
	now := time.Now().UTC().Truncate(time.Second)
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	body := func(kv ...any) map[string]any {
		m := map[string]any{"name": "c", "target": map[string]string{"id": s.target}}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	checkBad(t, gh, "POST", ownCreds, s.aliceTok, []badCase{
		{"missing name", map[string]any{"target": map[string]string{"id": s.target}}, 400, "name"},
		{"window longer than max", body("not_before", at(0), "not_after", at(25*time.Hour)), 400, "not_after"},
		{"not_after only, too far", body("not_after", at(48*time.Hour)), 400, "not_after"},
		{"not_after before not_before", body("not_before", at(time.Hour), "not_after", at(0)), 400, "not_after"},
		{"empty window", body("not_before", at(time.Hour), "not_after", at(time.Hour)), 400, "not_after"},
		{"bad time", body("not_before", "tomorrow"), 400, "not_before"},
		{"bad source address", body("source_address", []string{"10.0.0.1", "not-an-ip"}), 400, "source_address[1]"},
		{"host bits set", body("source_address", []string{"10.0.0.1/8"}), 400, "source_address[0]"},
		{"source address wrong type", body("source_address", "10.0.0.1"), 400, "source_address"},
		{"enabled wrong type", body("enabled", "yes"), 400, "enabled"},
		{"unknown field", body("secret", "mine"), 400, "secret"},
		{"malformed JSON", `{"name":`, 400, ""},
	})

	id := gh.Create(ownCreds, s.aliceTok, body("not_before", at(time.Hour), "not_after", at(10*time.Hour)))
	before := mustGet(t, gh, ownCreds+"/"+id, s.aliceTok)
	checkBad(t, gh, "PUT", ownCreds+"/"+id, s.aliceTok, []badCase{
		{"widen end", map[string]any{"comment": "x", "not_after": at(11 * time.Hour)}, 400, "not_after"},
		{"widen start", map[string]any{"comment": "x", "not_before": at(0)}, 400, "not_before"},
		{"cross over", map[string]any{"comment": "x", "not_before": at(9 * time.Hour), "not_after": at(2 * time.Hour)}, 400, "not_after"},
		{"change target", map[string]any{"comment": "x", "target": map[string]string{"id": s.otherTarget}}, 400, "target.id"},
		{"bad source", map[string]any{"comment": "x", "source_address": []string{"10.0.0.300"}}, 400, "source_address[0]"},
		{"blank name", map[string]any{"comment": "x", "name": ""}, 400, "name"},
	})
	if after := mustGet(t, gh, ownCreds+"/"+id, s.aliceTok); string(after) != string(before) {
		t.Errorf("a refused update changed the credential:\nbefore %s\nafter  %s", before, after)
	}
	// Narrowing, renaming and disabling are fine; naming the same target is harmless.
	var c credView
	gh.JSON("PUT", ownCreds+"/"+id, s.aliceTok, map[string]any{"name": "renamed", "enabled": false, "target": map[string]string{"id": s.target},
		"not_before": at(2 * time.Hour), "not_after": at(3 * time.Hour), "source_address": []string{"::1"}}, http.StatusOK, &c)
	if c.Name != "renamed" || c.Enabled || !c.NotBefore.Equal(now.Add(2*time.Hour)) || !c.NotAfter.Equal(now.Add(3*time.Hour)) ||
		!cmp.Equal(c.SourceAddress, []string{"::1"}) || c.Target.ID != s.target {
		t.Errorf("after narrowing: %+v", c)
	}
}

func TestCredentialSecret(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	s := newCredSetup(t, gh)
	id := gh.Create(ownCreds, s.aliceTok, map[string]any{"name": "kubectl", "target": map[string]string{"id": s.target}})

	status, b, h := doHeader(t, gh, "GET", ownCreds+"/"+id+"/secret", s.aliceTok, nil)
	secret := string(b)
	if status != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") || !strings.HasPrefix(secret, serviceapi.SecretPrefix) || len(secret) < 30 {
		t.Fatalf("secret: %d %s %q", status, h.Get("Content-Type"), secret)
	}
	if h.Get("Cache-Control") != "no-store" {
		t.Errorf("secret Cache-Control %q", h.Get("Cache-Control"))
	}
	// No other response carries it.
	for _, p := range []string{ownCreds, ownCreds + "/" + id, auditPath} {
		tok := s.aliceTok
		if p == auditPath {
			tok = s.adm
		}
		if b := mustGet(t, gh, p, tok); strings.Contains(string(b), secret) {
			t.Errorf("GET %s contains the credential secret", p)
		}
	}

	var conf struct {
		Addresses []string `json:"addresses"`
		Chain     string   `json:"ca_certificate_chain"`
	}
	gh.JSON("GET", proxyPath+"/conf", s.aliceTok, nil, http.StatusOK, &conf)
	status, b, h = doHeader(t, gh, "GET", ownCreds+"/"+id+"/secret?format=kubeconfig", s.aliceTok, nil)
	if status != http.StatusOK || !strings.Contains(h.Get("Content-Type"), "yaml") {
		t.Fatalf("kubeconfig: %d %s %s", status, h.Get("Content-Type"), b)
	}
	var kc struct {
		Kind     string `yaml:"kind"`
		Clusters []struct {
			Name    string `yaml:"name"`
			Cluster struct {
				Server   string `yaml:"server"`
				ProxyURL string `yaml:"proxy-url"`
				CAData   string `yaml:"certificate-authority-data"`
			} `yaml:"cluster"`
		} `yaml:"clusters"`
		Users []struct {
			Name string `yaml:"name"`
			User struct {
				Token string `yaml:"token"`
			} `yaml:"user"`
		} `yaml:"users"`
		Contexts []struct {
			Name    string `yaml:"name"`
			Context struct {
				Cluster string `yaml:"cluster"`
				User    string `yaml:"user"`
			} `yaml:"context"`
		} `yaml:"contexts"`
		CurrentContext string `yaml:"current-context"`
	}
	if err := yaml.Unmarshal(b, &kc); err != nil {
		t.Fatalf("kubeconfig is not YAML: %v\n%s", err, b)
	}
	if kc.Kind != "Config" || len(kc.Clusters) != 1 || len(kc.Users) != 1 || len(kc.Contexts) != 1 {
		t.Fatalf("kubeconfig shape: %s", b)
	}
	cl := kc.Clusters[0].Cluster
	if cl.Server != "https://kube.example.com:6443" {
		t.Errorf("server %q", cl.Server)
	}
	if len(conf.Addresses) == 0 || cl.ProxyURL != "http://"+conf.Addresses[0] {
		t.Errorf("proxy-url %q, conf addresses %v", cl.ProxyURL, conf.Addresses)
	}
	if ca, err := base64.StdEncoding.DecodeString(cl.CAData); err != nil || string(ca) != conf.Chain || conf.Chain == "" {
		t.Errorf("certificate-authority-data does not decode to the CA chain (err %v)", err)
	}
	if kc.Users[0].User.Token != secret {
		t.Error("kubeconfig token is not the credential secret")
	}
	if ctx := kc.Contexts[0]; kc.CurrentContext != ctx.Name || ctx.Context.Cluster != kc.Clusters[0].Name || ctx.Context.User != kc.Users[0].Name {
		t.Errorf("contexts do not tie cluster and user together: %s", b)
	}
	checkBad(t, gh, "GET", ownCreds+"/"+id+"/secret?format=pkcs12", s.aliceTok, []badCase{{"unknown format", nil, 400, "format"}})

	// last_used is shown once the proxy has recorded a use.
	used := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := gh.Server.Store().TouchCredentials(context.Background(), map[string]time.Time{id: used}); err != nil {
		t.Fatal(err)
	}
	var c credView
	gh.JSON("GET", ownCreds+"/"+id, s.aliceTok, nil, http.StatusOK, &c)
	if c.LastUsed == nil || !c.LastUsed.Equal(used) {
		t.Errorf("last_used %v, want %v", c.LastUsed, used)
	}
}
