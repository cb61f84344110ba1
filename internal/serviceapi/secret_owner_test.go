package serviceapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestProxySecretOnlyForOwner: api-proxy-credentials-manage could read any user's proxy secret, so a trail could
// show a user who did not act. After creation only the owner reads a secret; administrators rotate (audited) or
// delete, and never see the new secret either.
func TestProxySecretOnlyForOwner(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	s := newCredSetup(t, gh)
	_, mgrTok, _ := newUserWithRole(t, gh, s.adm, "credmgr", auth.APIProxyCredentialsManage)
	cred := gh.Create(userCreds(s.alice), s.adm, map[string]any{"name": "laptop", "target": map[string]string{"id": s.target}})
	// The creator may fetch the secret to hand it over, until the credential is first changed or used.
	if status, b := gh.Do("GET", userCreds(s.alice)+"/"+cred+"/secret", s.adm, nil); status != http.StatusOK || !strings.HasPrefix(string(b), "ghp_") {
		t.Fatalf("creator's handover read: %d %s", status, b)
	}
	gh.JSON("PUT", userCreds(s.alice)+"/"+cred, s.adm, map[string]any{"name": "laptop", "comment": "changed", "target": map[string]string{"id": s.target}}, http.StatusOK, nil)
	for _, who := range []struct{ name, token string }{{"superuser", s.adm}, {"credentials manager", mgrTok}, {"another owner", s.bobTok}} {
		for _, q := range []string{"", "?format=kubeconfig"} {
			status, b := gh.Do("GET", userCreds(s.alice)+"/"+cred+"/secret"+q, who.token, nil)
			if status != http.StatusForbidden || strings.Contains(string(b), "ghp_") {
				t.Errorf("%s read alice's secret%s: %d %s", who.name, q, status, b)
			}
		}
	}
	status, first := gh.Do("GET", ownCreds+"/"+cred+"/secret", s.aliceTok, nil)
	if status != http.StatusOK || !strings.HasPrefix(string(first), "ghp_") {
		t.Fatalf("owner reading: %d %s", status, first)
	}
	for _, who := range []struct{ name, token string }{{"superuser", s.adm}, {"credentials manager", mgrTok}} {
		status, b := gh.Do("POST", userCreds(s.alice)+"/"+cred+"/rotate", who.token, nil)
		if status != http.StatusOK || strings.Contains(string(b), "ghp_") {
			t.Fatalf("%s rotating: %d %s (the answer must not hold the secret)", who.name, status, b)
		}
	}
	if status, b := gh.Do("POST", userCreds(s.alice)+"/"+cred+"/rotate", s.bobTok, nil); status != http.StatusForbidden {
		t.Errorf("another owner rotated alice's credential: %d %s", status, b)
	}
	_, second := gh.Do("GET", ownCreds+"/"+cred+"/secret", s.aliceTok, nil)
	if !strings.HasPrefix(string(second), "ghp_") || string(second) == string(first) {
		t.Errorf("after rotation the owner reads %q, want a new secret", second)
	}
	var ev struct {
		Items []struct {
			Actor, Action, Outcome string
		} `json:"items"`
	}
	gh.JSON("GET", auditPath+"?"+url.Values{"object_id": {cred}, "limit": {"100"}}.Encode(), s.adm, nil, http.StatusOK, &ev)
	counts := map[string]int{}
	for _, e := range ev.Items {
		counts[e.Actor+" "+e.Action+" "+e.Outcome]++
	}
	for k, want := range map[string]int{"admin rotate-secret success": 1, "credmgr rotate-secret success": 1,
		"admin read-secret failure": 2, "admin read-secret success": 1, "credmgr read-secret failure": 2, "alice read-secret success": 2} {
		if counts[k] != want {
			t.Errorf("audit has %d %q events, want %d (all: %v)", counts[k], k, want, counts)
		}
	}
}
