package serviceapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestExtenderPrefixNeedsSuperuser pins the extender way around TestTargetRepointNeedsSecret: a target routed
// through an extender (nat_target_host extender:corp) sends its requests, secret injected, to whichever agent
// holds an extender credential for that prefix. With api-targets-manage alone a principal could create a second
// extender on the prefix, move its own onto it, or issue itself a new token or certificate for the existing one,
// and receive the traffic. Those now need every permission while a target routes through the prefix; the same
// operations on prefixes no target uses, and other edits, stay api-targets-manage's.
func TestExtenderPrefixNeedsSuperuser(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	e := &delegationEnv{t: t, gh: gh, adm: gh.AdminToken()}
	uid := gh.Create(usersPath, e.adm, map[string]any{"username": "ext-admin", "password": "Ext-admin-pass-1"})
	gh.JSON("PUT", "/role-store/api/v1/users/"+uid+"/roles", e.adm, []map[string]string{{"id": e.role(auth.APITargetsManage)}}, http.StatusOK, nil)
	tok := gh.Token("ext-admin", "Ext-admin-pass-1")

	tokenExt := gh.Create(extendersPath, e.adm, map[string]any{"name": "corp", "routing_prefix": "corp"})
	certExt := gh.Create(extendersPath, e.adm, map[string]any{"name": "corp-cert", "routing_prefix": "corp", "authentication": "certificate"})
	body := targetBody("routed")
	body["authorized_endpoints"] = []map[string]any{{"host": "db.corp.test", "protocols": []string{"http"}, "methods": []string{"GET"},
		"paths": []string{"/**"}, "nat_target_host": "extender:corp"}}
	gh.Create(targetsPath, e.adm, body)

	refused := func(t *testing.T, method, path string, in any, property string) {
		t.Helper()
		status, b := gh.Do(method, path, tok, in)
		var ae apiError
		json.Unmarshal(b, &ae)
		if status != http.StatusForbidden || ae.Property != property || !strings.Contains(ae.ErrorMessage, "routed") {
			t.Errorf("%s %s: %d property %q, want 403 naming %s and the target: %s", method, path, status, ae.Property, property, b)
		}
		if strings.Contains(string(b), `"token":"`) || strings.Contains(string(b), "PRIVATE KEY") {
			t.Errorf("a refusal carries a credential: %s", b)
		}
	}
	refused(t, "POST", extendersPath+"/"+tokenExt+"/token", nil, "token")
	refused(t, "POST", extendersPath+"/"+certExt+"/certificate", nil, "certificate")
	refused(t, "POST", extendersPath, map[string]any{"name": "second", "routing_prefix": "CORP"}, "routing_prefix")
	mine := gh.Create(extendersPath, tok, map[string]any{"name": "mine", "routing_prefix": "mine"})
	refused(t, "PUT", extendersPath+"/"+mine, map[string]any{"routing_prefix": "corp"}, "routing_prefix")
	var got struct {
		RoutingPrefix string `json:"routing_prefix"`
	}
	gh.JSON("GET", extendersPath+"/"+mine, tok, nil, http.StatusOK, &got)
	if got.RoutingPrefix != "mine" {
		t.Errorf("a refused update moved the extender to %q", got.RoutingPrefix)
	}

	// What puts no new agent behind a used prefix stays api-targets-manage's.
	gh.JSON("POST", extendersPath+"/"+mine+"/token", tok, nil, http.StatusOK, nil)
	gh.JSON("PUT", extendersPath+"/"+tokenExt, tok, map[string]any{"name": "corp-renamed", "enabled": false}, http.StatusOK, nil)
	gh.JSON("PUT", extendersPath+"/"+tokenExt, tok, map[string]any{"enabled": true}, http.StatusOK, nil)
	// A superuser may.
	gh.JSON("POST", extendersPath+"/"+tokenExt+"/token", e.adm, nil, http.StatusOK, nil)
	gh.Create(extendersPath, e.adm, map[string]any{"name": "corp-2", "routing_prefix": "corp"})
}
