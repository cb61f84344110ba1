package serviceapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
	"github.com/google/go-cmp/cmp"
)

// TestTargetRepointNeedsSecret pins the exfiltration of a target secret by re-pointing the target: before the
// rule, a principal holding api-targets-manage (who is never shown the secret) could PUT an existing target with
// its host, port, protocol, NAT host or TLS trust changed and no secret, and the gateway would then inject the
// stored secret into requests to a server of the principal's choosing. Such an update is now refused unless it
// supplies the secret again; one that keeps the destinations keeps working without it, GET-then-PUT included.
func TestTargetRepointNeedsSecret(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	e := &delegationEnv{t: t, gh: gh, adm: gh.AdminToken()}
	ctx := context.Background()
	anchor, _ := selfSigned(t, "upstream-ca")
	otherAnchor, _ := selfSigned(t, "attacker-ca")
	const secret = "tgt-SECRET-repoint"

	uid := gh.Create(usersPath, e.adm, map[string]any{"username": "target-admin", "password": "Target-pass-12"})
	gh.JSON("PUT", "/role-store/api/v1/users/"+uid+"/roles", e.adm, []map[string]string{{"id": e.role(auth.APITargetsManage)}}, http.StatusOK, nil)
	actors := map[string]string{"api-targets-manage": gh.Token("target-admin", "Target-pass-12"), "superuser": e.adm}

	newTarget := func() string {
		body := targetBody(e.unique("repoint"))
		body["authorized_endpoints"] = []map[string]any{
			{"host": "api.example.com", "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/v1/**"}},
			{"host": "10.0.0.7:6443", "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/**"}, "nat_target_host": "10.0.0.8:6443"},
		}
		body["tls_trust_anchors"] = anchor
		body["target_credential"] = map[string]any{"type": "token", "bearer_token": secret}
		return gh.Create(targetsPath, e.adm, body)
	}
	// edited is the target's GET document with change applied, as a client that GETs, edits and PUTs sends it.
	edited := func(id string, change func(doc map[string]any)) map[string]any {
		_, b := gh.Do("GET", targetsPath+"/"+id, e.adm, nil)
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		change(doc)
		return doc
	}
	ep := func(doc map[string]any, i int) map[string]any {
		return doc["authorized_endpoints"].([]any)[i].(map[string]any)
	}

	refused := []struct {
		name    string
		changed string
		change  func(doc map[string]any)
	}{
		{"host", "authorized_endpoints[0].host", func(d map[string]any) { ep(d, 0)["host"] = "collector.attacker.test" }},
		{"port", "authorized_endpoints[0].host", func(d map[string]any) { ep(d, 0)["host"] = "api.example.com:8443" }},
		{"protocol", "authorized_endpoints[0].protocols", func(d map[string]any) { ep(d, 0)["protocols"] = []string{"http"} }},
		{"protocol any", "authorized_endpoints[0].protocols", func(d map[string]any) { ep(d, 0)["protocols"] = []string{"*"} }},
		{"nat added", "authorized_endpoints[0].nat_target_host", func(d map[string]any) { ep(d, 0)["nat_target_host"] = "127.0.0.1:9443" }},
		{"nat changed", "authorized_endpoints[1].nat_target_host", func(d map[string]any) { ep(d, 1)["nat_target_host"] = "127.0.0.1" }},
		{"nat removed", "authorized_endpoints[1].nat_target_host", func(d map[string]any) { delete(ep(d, 1), "nat_target_host") }},
		{"endpoint added", "authorized_endpoints[2].host", func(d map[string]any) {
			d["authorized_endpoints"] = append(d["authorized_endpoints"].([]any), map[string]any{"host": "*.attacker.test", "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/**"}})
		}},
		{"skip verify", "tls_insecure_skip_verify", func(d map[string]any) { d["tls_insecure_skip_verify"] = true }},
		{"other anchors", "tls_trust_anchors", func(d map[string]any) { d["tls_trust_anchors"] = otherAnchor }},
		{"anchors dropped", "tls_trust_anchors", func(d map[string]any) { d["tls_trust_anchors"] = "" }},
	}
	for actor, tok := range actors {
		for _, c := range refused {
			t.Run(actor+"/refused/"+c.name, func(t *testing.T) {
				id := newTarget()
				before, err := gh.Server.Store().Target(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				status, b := gh.Do("PUT", targetsPath+"/"+id, tok, edited(id, c.change))
				if status != http.StatusBadRequest {
					t.Fatalf("PUT status %d, want 400: %s", status, b)
				}
				var ae apiError
				if err := json.Unmarshal(b, &ae); err != nil {
					t.Fatal(err)
				}
				if ae.Property != "target_credential.bearer_token" || !strings.Contains(ae.ErrorMessage, c.changed) || !strings.Contains(string(b), `"property":"`+c.changed+`"`) {
					t.Errorf("error does not name the secret and %s: %s", c.changed, b)
				}
				if strings.Contains(string(b), secret) {
					t.Errorf("error answer holds the secret")
				}
				after, err := gh.Server.Store().Target(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(before, after); d != "" {
					t.Errorf("a refused PUT changed the stored target (-before +after):\n%s", d)
				}
				// The same change with the secret supplied again is the owner of the secret speaking: allowed.
				withSecret := edited(id, c.change)
				withSecret["target_credential"] = map[string]any{"type": "token", "bearer_token": "re-supplied-" + c.name}
				gh.JSON("PUT", targetsPath+"/"+id, tok, withSecret, http.StatusOK, nil)
				if after, _ = gh.Server.Store().Target(ctx, id); after.Credential.BearerToken != "re-supplied-"+c.name {
					t.Errorf("PUT with the secret did not store it")
				}
			})
		}
	}

	kept := []struct {
		name   string
		change func(doc map[string]any)
	}{
		{"as fetched", func(map[string]any) {}},
		{"name and comment", func(d map[string]any) { d["name"] = e.unique("renamed"); d["comment"] = "edited" }},
		{"paths and methods", func(d map[string]any) {
			ep(d, 0)["paths"] = []string{"/v2/**"}
			ep(d, 0)["methods"] = []string{"GET", "POST"}
		}},
		{"same host spelled differently", func(d map[string]any) { ep(d, 0)["host"] = "API.Example.COM.:443" }},
		{"endpoint removed", func(d map[string]any) { d["authorized_endpoints"] = d["authorized_endpoints"].([]any)[:1] }},
		{"unauthorized endpoint added", func(d map[string]any) {
			d["unauthorized_endpoints"] = []map[string]any{{"host": "api.example.com", "protocols": []string{"https"}, "methods": []string{"*"}, "paths": []string{"/v1/admin/**"}}}
		}},
		{"anchors re-encoded with CRLF", func(d map[string]any) { d["tls_trust_anchors"] = strings.ReplaceAll(anchor, "\n", "\r\n") }},
		{"target_credential left out", func(d map[string]any) { delete(d, "target_credential") }},
		{"fields left out", func(d map[string]any) {
			delete(d, "authorized_endpoints")
			delete(d, "tls_trust_anchors")
			delete(d, "tls_insecure_skip_verify")
		}},
	}
	for actor, tok := range actors {
		for _, c := range kept {
			t.Run(actor+"/kept/"+c.name, func(t *testing.T) {
				id := newTarget()
				gh.JSON("PUT", targetsPath+"/"+id, tok, edited(id, c.change), http.StatusOK, nil)
				after, err := gh.Server.Store().Target(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if after.Credential.BearerToken != secret {
					t.Errorf("stored secret changed")
				}
			})
		}
	}

	// Every credential type's secret is asked for by its own field; a change of type carries the new secret.
	cert, key := selfSigned(t, "client")
	for _, c := range []struct {
		cred, resent map[string]any
		property     string
	}{
		{map[string]any{"type": "basicauth", "basic_auth_username": "svc", "basic_auth_password": secret},
			map[string]any{"type": "basicauth", "basic_auth_username": "svc"}, "target_credential.basic_auth_password"},
		{map[string]any{"type": "header", "header_name": "X-Key", "header_value": secret},
			map[string]any{"type": "header", "header_name": "X-Key"}, "target_credential.header_value"},
		{map[string]any{"type": "certificate", "certificate": cert, "private_key": key},
			map[string]any{"type": "certificate", "certificate": cert}, "target_credential.private_key"},
	} {
		t.Run("type/"+c.cred["type"].(string), func(t *testing.T) {
			body := targetBody(e.unique("typed"))
			body["target_credential"] = c.cred
			id := gh.Create(targetsPath, e.adm, body)
			moved := edited(id, func(d map[string]any) { ep(d, 0)["host"] = "collector.attacker.test" })
			moved["target_credential"] = c.resent
			checkBad(t, gh, "PUT", targetsPath+"/"+id, actors["api-targets-manage"], []badCase{{"moved without secret", moved, 400, c.property}})
			moved["target_credential"] = map[string]any{"type": "token", "bearer_token": "a-new-secret"}
			gh.JSON("PUT", targetsPath+"/"+id, actors["api-targets-manage"], moved, http.StatusOK, nil)
		})
	}
}
