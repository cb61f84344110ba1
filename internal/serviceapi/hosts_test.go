package serviceapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
	"github.com/google/go-cmp/cmp"
)

const hostsPath = "/host-store/api/v1/hosts"

func (e *matrixEnv) victimHost() string {
	return e.gh.Create(hostsPath, e.adm, map[string]any{"common_name": e.unique("victim-host")})
}

// getHostMap returns the host as a map without the fields that differ from run to run.
func getHostMap(t *testing.T, gh *testserver.Instance, token, id string) map[string]any {
	t.Helper()
	var m map[string]any
	gh.JSON("GET", hostsPath+"/"+id, token, nil, http.StatusOK, &m)
	if m["id"] != id {
		t.Errorf("GET host %s answers id %v", id, m["id"])
	}
	for _, k := range []string{"id", "created", "updated"} {
		if s, _ := m[k].(string); s == "" {
			t.Errorf("host has no %s: %v", k, m)
		}
		delete(m, k)
	}
	return m
}

func TestHostsCRUD(t *testing.T) {
	forEachDB(t, func(t *testing.T, gh *testserver.Instance) {
		adm := gh.AdminToken()
		id := gh.Create(hostsPath, adm, map[string]any{
			"common_name": " Web-01.example.com ", "comment": "front end", "external_id": "i-0123", "zone": "eu-north-1",
			"addresses": []string{"10.0.0.5", "WEB-01.Example.com.", "::ffff:10.0.0.6", "10.0.0.5", "2001:DB8::1"},
			"services": []map[string]any{
				{"service": "ssh"},
				{"service": "HTTPS", "address": "web-01.example.com", "port": 8443},
				{"service": "db", "address": "10.0.0.5", "port": 5432, "source": "scan"},
			},
			"tags": []string{"prod", "web", "prod"},
		})
		want := map[string]any{
			"common_name": "Web-01.example.com", "comment": "front end", "external_id": "i-0123", "zone": "eu-north-1",
			"addresses": []any{"10.0.0.5", "web-01.example.com", "10.0.0.6", "2001:db8::1"},
			"services": []any{
				map[string]any{"service": "SSH", "address": "10.0.0.5", "port": 22.0, "source": "local"},
				map[string]any{"service": "HTTPS", "address": "web-01.example.com", "port": 8443.0, "source": "local"},
				map[string]any{"service": "DB", "address": "10.0.0.5", "port": 5432.0, "source": "scan"},
			},
			"tags": []any{"prod", "web"}, "source": "local", "author": "admin", "updated_by": "admin",
		}
		if d := cmp.Diff(want, getHostMap(t, gh, adm, id)); d != "" {
			t.Errorf("created host (-want +got):\n%s", d)
		}

		t.Run("duplicate common name", func(t *testing.T) {
			status, b := gh.Do("POST", hostsPath, adm, map[string]any{"common_name": "WEB-01.EXAMPLE.COM"})
			if status != http.StatusConflict {
				t.Fatalf("POST duplicate: %d %s", status, b)
			}
			var e apiError
			json.Unmarshal(b, &e)
			if e.ErrorCode != "CONFLICT" || e.Property != "common_name" {
				t.Errorf("duplicate answer %+v, want CONFLICT on common_name", e)
			}
			other := gh.Create(hostsPath, adm, map[string]any{"common_name": "web-02"})
			status, b = gh.Do("PUT", hostsPath+"/"+other, adm, map[string]any{"common_name": "web-01.EXAMPLE.com"})
			if status != http.StatusConflict || !strings.Contains(string(b), `"property":"common_name"`) {
				t.Errorf("PUT to a taken common name: %d %s", status, b)
			}
			gh.JSON("DELETE", hostsPath+"/"+other, adm, nil, http.StatusOK, nil)
		})

		t.Run("partial PUT keeps the rest", func(t *testing.T) {
			var put map[string]any
			gh.JSON("PUT", hostsPath+"/"+id, adm, map[string]any{"comment": "changed", "tags": []string{"prod"}}, http.StatusOK, &put)
			want["comment"], want["tags"] = "changed", []any{"prod"}
			got := getHostMap(t, gh, adm, id)
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("after PUT (-want +got):\n%s", d)
			}
			delete(put, "id")
			delete(put, "created")
			delete(put, "updated")
			if d := cmp.Diff(got, put); d != "" {
				t.Errorf("PUT answer differs from GET (-get +put):\n%s", d)
			}
		})

		t.Run("GET document sent back is a valid PUT", func(t *testing.T) {
			var doc map[string]any
			gh.JSON("GET", hostsPath+"/"+id, adm, nil, http.StatusOK, &doc)
			gh.JSON("PUT", hostsPath+"/"+id, adm, doc, http.StatusOK, nil)
			if d := cmp.Diff(want, getHostMap(t, gh, adm, id)); d != "" {
				t.Errorf("after round trip (-want +got):\n%s", d)
			}
		})

		t.Run("empty lists clear", func(t *testing.T) {
			gh.JSON("PUT", hostsPath+"/"+id, adm, map[string]any{"services": []any{}, "tags": []any{}}, http.StatusOK, nil)
			got := getHostMap(t, gh, adm, id)
			if d := cmp.Diff([]any{}, got["services"]); d != "" {
				t.Errorf("services (-want +got):\n%s", d)
			}
			if d := cmp.Diff([]any{}, got["tags"]); d != "" {
				t.Errorf("tags (-want +got):\n%s", d)
			}
		})

		t.Run("unknown ids", func(t *testing.T) {
			for _, m := range []string{"GET", "PUT", "DELETE"} {
				var body any
				if m == "PUT" {
					body = map[string]any{"comment": "x"}
				}
				status, b := gh.Do(m, hostsPath+"/no-such-host", adm, body)
				if status != http.StatusNotFound {
					t.Errorf("%s unknown host: %d %s", m, status, b)
				} else {
					wantErrorCode(t, b, "NOT_FOUND")
				}
			}
		})

		t.Run("delete", func(t *testing.T) {
			gh.JSON("DELETE", hostsPath+"/"+id, adm, nil, http.StatusOK, nil)
			gh.JSON("GET", hostsPath+"/"+id, adm, nil, http.StatusNotFound, nil)
			gh.JSON("DELETE", hostsPath+"/"+id, adm, nil, http.StatusNotFound, nil)
			// The common name is free again.
			gh.Create(hostsPath, adm, map[string]any{"common_name": "web-01.example.com"})
		})

		t.Run("audit", func(t *testing.T) {
			l := events(t, gh, adm, url.Values{"object_type": {"host"}, "object_id": {id}, "limit": {"100"}})
			var actions []string
			var commentChange any
			for _, e := range l.Items {
				actions = append(actions, e.Action)
				if e.Actor != "admin" || e.Outcome != "success" {
					t.Errorf("event %+v: want actor admin and success", e)
				}
				if c, ok := e.Diff["comment"]; ok && e.Action == "update" {
					commentChange = c
				}
			}
			slices.Sort(actions)
			if d := cmp.Diff([]string{"create", "delete", "update", "update", "update"}, actions); d != "" {
				t.Errorf("audit actions (-want +got):\n%s", d)
			}
			if d := cmp.Diff(map[string]any{"old": "front end", "new": "changed"}, commentChange); d != "" {
				t.Errorf("comment change in the audit diff (-want +got):\n%s", d)
			}
		})
	})
}

func TestHostsValidation(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	long := strings.Repeat("x", 256)
	svc := func(s map[string]any) map[string]any {
		return map[string]any{"common_name": "h", "addresses": []string{"h.example.com"}, "services": []any{s}}
	}
	checkBad(t, gh, "POST", hostsPath, adm, []badCase{
		{"no common name", map[string]any{"comment": "x"}, 400, "common_name"},
		{"blank common name", map[string]any{"common_name": "  "}, 400, "common_name"},
		{"control character in common name", map[string]any{"common_name": "a\nb"}, 400, "common_name"},
		{"long common name", map[string]any{"common_name": long}, 400, "common_name"},
		{"long external id", map[string]any{"common_name": "h", "external_id": long}, 400, "external_id"},
		{"control character in zone", map[string]any{"common_name": "h", "zone": "a\tb"}, 400, "zone"},
		{"bad address", map[string]any{"common_name": "h", "addresses": []string{"10.0.0.1", "not a host"}}, 400, "addresses[1]"},
		{"address with port", map[string]any{"common_name": "h", "addresses": []string{"web:22"}}, 400, "addresses[0]"},
		{"bracketed IPv6", map[string]any{"common_name": "h", "addresses": []string{"[::1]"}}, 400, "addresses[0]"},
		{"IPv6 zone", map[string]any{"common_name": "h", "addresses": []string{"fe80::1%eth0"}}, 400, "addresses[0]"},
		{"octal-looking IPv4", map[string]any{"common_name": "h", "addresses": []string{"10.0.0.010"}}, 400, "addresses[0]"},
		{"addresses not a list", map[string]any{"common_name": "h", "addresses": "10.0.0.1"}, 400, "addresses"},
		{"unknown service", svc(map[string]any{"service": "telnet"}), 400, "services[0].service"},
		{"service without address", map[string]any{"common_name": "h", "services": []any{map[string]any{"service": "ssh"}}}, 400, "services[0].address"},
		{"bad service address", svc(map[string]any{"service": "ssh", "address": "a b"}), 400, "services[0].address"},
		{"DB needs a port", svc(map[string]any{"service": "db"}), 400, "services[0].port"},
		{"port out of range", svc(map[string]any{"service": "ssh", "port": 70000}), 400, "services[0].port"},
		{"negative port", svc(map[string]any{"service": "ssh", "port": -1}), 400, "services[0].port"},
		{"bad service source", svc(map[string]any{"service": "ssh", "source": "a b"}), 400, "services[0].source"},
		{"duplicate service", map[string]any{"common_name": "h", "addresses": []string{"h.example.com"},
			"services": []any{map[string]any{"service": "ssh"}, map[string]any{"service": "SSH", "address": "H.example.com", "port": 22}}}, 400, "services[1]"},
		{"empty tag", map[string]any{"common_name": "h", "tags": []string{"ok", ""}}, 400, "tags[1]"},
		{"bad source", map[string]any{"common_name": "h", "source": "two words"}, 400, "source"},
		{"unknown field", map[string]any{"common_name": "h", "colour": "red"}, 400, "colour"},
		{"empty body", "", 400, ""},
	})

	id := gh.Create(hostsPath, adm, map[string]any{"common_name": "keep", "addresses": []string{"10.9.9.9"}})
	checkBad(t, gh, "PUT", hostsPath+"/"+id, adm, []badCase{
		{"blank common name", map[string]any{"common_name": ""}, 400, "common_name"},
		{"bad address", map[string]any{"addresses": []string{"10.0.0.256"}}, 400, "addresses[0]"},
	})
	var got map[string]any
	gh.JSON("GET", hostsPath+"/"+id, adm, nil, http.StatusOK, &got)
	if got["common_name"] != "keep" || !cmp.Equal(got["addresses"], []any{"10.9.9.9"}) {
		t.Errorf("a refused PUT changed the host: %v", got)
	}

	checkBad(t, gh, "POST", hostsPath+"/search", adm, []badCase{
		{"unknown search field", map[string]any{"name": "x"}, 400, "name"},
		{"tags not a list", map[string]any{"tags": "prod"}, 400, "tags"},
	})
	for _, c := range []struct{ query, property string }{
		{"sortkey=name", "sortkey"}, {"sortdir=up", "sortdir"}, {"limit=-1", "limit"}, {"offset=x", "offset"},
	} {
		status, b := gh.Do("GET", hostsPath+"?"+c.query, adm, nil)
		var e apiError
		json.Unmarshal(b, &e)
		if status != http.StatusBadRequest || e.Property != c.property {
			t.Errorf("GET ?%s: %d %s, want 400 on %s", c.query, status, b, c.property)
		}
	}
}

// hostNames returns the common names of a host list answer, and its count.
func hostNames(t *testing.T, gh *testserver.Instance, method, path, token string, body any) ([]string, int) {
	t.Helper()
	var l struct {
		Count int `json:"count"`
		Items []struct {
			CommonName string `json:"common_name"`
		} `json:"items"`
	}
	gh.JSON(method, path, token, body, http.StatusOK, &l)
	names := []string{}
	for _, it := range l.Items {
		names = append(names, it.CommonName)
	}
	return names, l.Count
}

func TestHostsListAndSearch(t *testing.T) {
	forEachDB(t, func(t *testing.T, gh *testserver.Instance) {
		adm := gh.AdminToken()
		for _, h := range []map[string]any{
			{"common_name": "alpha.example.com", "addresses": []string{"10.1.0.1"}, "tags": []string{"prod", "web"}, "comment": "front door"},
			{"common_name": "Beta.example.com", "addresses": []string{"10.1.0.2"}, "tags": []string{"prod", "db"}, "source": "ldap-hosts",
				"services": []any{map[string]any{"service": "db", "port": 5432}}},
			{"common_name": "gamma.internal", "addresses": []string{"192.168.7.7"}, "tags": []string{"dev"}, "comment": "100% test"},
			{"common_name": "delta"},
		} {
			gh.Create(hostsPath, adm, h)
		}
		_, viewer, _ := newUserWithRole(t, gh, adm, "host-viewer", auth.HostsView)

		lists := []struct {
			name  string
			query string
			want  []string
			count int
		}{
			{"default order ignores case", "", []string{"alpha.example.com", "Beta.example.com", "delta", "gamma.internal"}, 4},
			{"descending", "?sortdir=DESC", []string{"gamma.internal", "delta", "Beta.example.com", "alpha.example.com"}, 4},
			{"page", "?offset=1&limit=2", []string{"Beta.example.com", "delta"}, 4},
			{"past the end", "?offset=10", []string{}, 4},
			{"filter on an address", "?filter=10.1.0", []string{"alpha.example.com", "Beta.example.com"}, 2},
			{"filter ignores case", "?filter=EXAMPLE", []string{"alpha.example.com", "Beta.example.com"}, 2},
			{"filter on a comment", "?filter=door", []string{"alpha.example.com"}, 1},
			{"sort by source", "?sortkey=source&limit=1", []string{"Beta.example.com"}, 4},
			{"sort by created", "?sortkey=created&sortdir=desc&limit=1", []string{"delta"}, 4},
		}
		for _, c := range lists {
			t.Run("list "+c.name, func(t *testing.T) {
				got, count := hostNames(t, gh, "GET", hostsPath+c.query, viewer, nil)
				if d := cmp.Diff(c.want, got); d != "" || count != c.count {
					t.Errorf("GET %s: count %d, want %d; names (-want +got):\n%s", c.query, count, c.count, d)
				}
			})
		}

		searches := []struct {
			name  string
			query string
			body  map[string]any
			want  []string
		}{
			{"everything", "", map[string]any{}, []string{"alpha.example.com", "Beta.example.com", "delta", "gamma.internal"}},
			{"all keywords must match", "", map[string]any{"keywords": "example  PROD"}, []string{"alpha.example.com", "Beta.example.com"}},
			{"keyword in a comment", "", map[string]any{"keywords": "front"}, []string{"alpha.example.com"}},
			{"keyword in a service", "", map[string]any{"keywords": "db"}, []string{"Beta.example.com"}},
			{"every tag must be on the host", "", map[string]any{"tags": []string{"prod", "db"}}, []string{"Beta.example.com"}},
			{"tags match exactly", "", map[string]any{"tags": []string{"PROD"}}, []string{}},
			{"source", "", map[string]any{"source": "ldap-hosts"}, []string{"Beta.example.com"}},
			{"default source", "", map[string]any{"source": "local"}, []string{"alpha.example.com", "delta", "gamma.internal"}},
			{"LIKE wildcards are literal", "", map[string]any{"keywords": "%"}, []string{"gamma.internal"}},
			{"underscore is literal", "", map[string]any{"keywords": "_"}, []string{}},
			{"keywords and tags and source", "", map[string]any{"keywords": "10.1", "tags": []string{"prod"}, "source": "local"}, []string{"alpha.example.com"}},
			{"list parameters apply", "?sortdir=desc&limit=1", map[string]any{"tags": []string{"prod"}}, []string{"Beta.example.com"}},
			{"filter applies too", "?filter=beta", map[string]any{"tags": []string{"prod"}}, []string{"Beta.example.com"}},
		}
		for _, c := range searches {
			t.Run("search "+c.name, func(t *testing.T) {
				got, _ := hostNames(t, gh, "POST", hostsPath+"/search"+c.query, viewer, c.body)
				if d := cmp.Diff(c.want, got); d != "" {
					t.Errorf("search %v: names (-want +got):\n%s", c.body, d)
				}
			})
		}

		t.Run("a viewer cannot write", func(t *testing.T) {
			if status, b := gh.Do("POST", hostsPath, viewer, map[string]any{"common_name": "nope"}); status != http.StatusForbidden {
				t.Errorf("POST by a viewer: %d %s", status, b)
			}
			if _, count := hostNames(t, gh, "GET", hostsPath, adm, nil); count != 4 {
				t.Errorf("count after a refused POST = %d, want 4", count)
			}
		})
	})
}

// exerciseHosts drives every host-store operation for TestOpenAPIMatchesHandlers. alice holds no host permission.
func exerciseHosts(cl *client, adm, alice string) {
	const H = hostsPath
	host := cl.id(exchange{method: "POST", path: H, token: adm, want: 201, json: map[string]any{
		"common_name": "db-1.example.com", "comment": "primary", "addresses": []string{"10.2.0.1", "db-1.example.com"},
		"services": []any{map[string]any{"service": "DB", "port": 5432}, map[string]any{"service": "ssh", "address": "10.2.0.1"}},
		"tags":     []string{"prod"}, "external_id": "i-1", "instance_id": "vm-1", "source_id": "src-1", "organization": "Example",
		"organizational_unit": "Ops", "zone": "eu", "host_type": "vm", "host_classification": "critical",
		"distinguished_name": "cn=db-1,ou=hosts,dc=example,dc=com", "source": "local",
	}})
	other := cl.id(exchange{method: "POST", path: H, token: adm, want: 201, json: map[string]any{"common_name": "db-2"}})
	cl.do(exchange{method: "POST", path: H, token: adm, want: 409, json: map[string]any{"common_name": "DB-1.example.com"}})
	cl.do(exchange{method: "POST", path: H, token: adm, want: 400, json: map[string]any{"common_name": "x", "addresses": []string{"not a host"}}})
	cl.do(exchange{method: "POST", path: H, token: adm, want: 400, invalid: true, json: map[string]any{"common_name": "x",
		"addresses": []string{"x.example.com"}, "services": []any{map[string]any{"service": "ssh", "port": 70000}}}})
	cl.do(exchange{method: "POST", path: H, token: adm, want: 400, invalid: true, json: map[string]any{"addresses": []string{"10.0.0.1"}}})
	cl.do(exchange{method: "POST", path: H, token: alice, want: 403, json: map[string]any{"common_name": "x"}})
	cl.do(exchange{method: "GET", path: H + "?offset=0&limit=10&sortkey=common_name&sortdir=desc&filter=db", token: adm, want: 200})
	cl.do(exchange{method: "GET", path: H + "?sortkey=name", token: adm, want: 400, invalid: true})
	cl.do(exchange{method: "GET", path: H, token: alice, want: 403})
	cl.do(exchange{method: "POST", path: H + "/search?limit=5&sortkey=updated", token: adm, want: 200, json: map[string]any{
		"keywords": "db primary", "tags": []string{"prod"}, "source": "local"}})
	cl.do(exchange{method: "POST", path: H + "/search", token: adm, want: 400, invalid: true, json: map[string]any{"name": "db"}})
	cl.do(exchange{method: "GET", path: H + "/" + host, token: adm, want: 200})
	cl.do(exchange{method: "GET", path: H + "/no-such-host", token: adm, want: 404})
	cl.do(exchange{method: "PUT", path: H + "/" + host, token: adm, want: 200, json: map[string]any{"comment": "the primary", "tags": []string{"prod", "pg"}}})
	cl.do(exchange{method: "PUT", path: H + "/" + other, token: adm, want: 409, json: map[string]any{"common_name": "db-1.example.com"}})
	cl.do(exchange{method: "PUT", path: H + "/" + other, token: adm, want: 400, json: map[string]any{"services": []any{map[string]any{"service": "ssh"}}}})
	cl.do(exchange{method: "PUT", path: H + "/no-such-host", token: adm, want: 404, json: map[string]any{"comment": "x"}})
	cl.do(exchange{method: "DELETE", path: H + "/" + other, token: adm, want: 200})
	cl.do(exchange{method: "DELETE", path: H + "/" + other, token: adm, want: 404})
	cl.do(exchange{method: "DELETE", path: H + "/" + host, token: alice, want: 403})
}
