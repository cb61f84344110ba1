package serviceapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestMyTargets pins GET /users/current/api-targets: a user holding no permission at all sees exactly the targets of
// their roles, without the target credential, trust anchors or NAT hosts; an API client is refused.
func TestMyTargets(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	_, carolTok, carolRole := newUserWithRole(t, gh, adm, "carol")
	_, _, otherRole := newUserWithRole(t, gh, adm, "dave")

	mine := targetBody("billing-api", carolRole)
	mine["authorized_endpoints"] = []map[string]any{{"host": "billing.example.com", "protocols": []string{"https"}, "methods": []string{"GET"},
		"paths": []string{"/v1/**"}, "nat_target_host": "10.9.9.9"}}
	mine["tls_trust_anchors"] = ""
	gh.Create(targetsPath, adm, mine)
	gh.Create(targetsPath, adm, targetBody("hr-api", otherRole))
	gh.Create(targetsPath, adm, targetBody("shared-api", otherRole, carolRole))

	// carol holds no permission, so the admin list is closed to her, and her own list is open.
	if st, _ := gh.Do("GET", targetsPath, carolTok, nil); st != http.StatusForbidden {
		t.Fatalf("GET %s as carol = %d, want 403", targetsPath, st)
	}
	status, body := gh.Do("GET", proxyPath+"/users/current/api-targets", carolTok, nil)
	if status != http.StatusOK {
		t.Fatalf("my targets = %d %s", status, body)
	}
	for _, leak := range []string{"tgt-secret", "10.9.9.9", "target_credential", "roles", "nat_target_host"} {
		if strings.Contains(string(body), leak) {
			t.Errorf("my targets shows %q: %s", leak, body)
		}
	}
	var got struct {
		Count int `json:"count"`
		Items []struct {
			Name      string `json:"name"`
			Endpoints []struct {
				Host  string   `json:"host"`
				Paths []string `json:"paths"`
			} `json:"authorized_endpoints"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, it := range got.Items {
		names = append(names, it.Name)
	}
	if got.Count != 2 || !slices.Equal(names, []string{"billing-api", "shared-api"}) {
		t.Fatalf("my targets = %d %v, want billing-api and shared-api", got.Count, names)
	}
	if e := got.Items[0].Endpoints; len(e) != 1 || e[0].Host != "billing.example.com" || !slices.Equal(e[0].Paths, []string{"/v1/**"}) {
		t.Errorf("billing-api endpoints = %+v", e)
	}

	// filter and paging work as on the other lists.
	gh.JSON("GET", proxyPath+"/users/current/api-targets?filter=shared", carolTok, nil, http.StatusOK, &got)
	if got.Count != 1 || got.Items[0].Name != "shared-api" {
		t.Errorf("filter=shared: %+v", got)
	}
	gh.JSON("GET", proxyPath+"/users/current/api-targets?offset=1&limit=1", carolTok, nil, http.StatusOK, &got)
	if got.Count != 2 || len(got.Items) != 1 || got.Items[0].Name != "shared-api" {
		t.Errorf("offset=1&limit=1: %+v", got)
	}
	if st, _ := gh.Do("GET", proxyPath+"/users/current/api-targets", "", nil); st != http.StatusUnauthorized {
		t.Errorf("without a token = %d, want 401", st)
	}
}
