package e2e_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// The tests below change connection policies through the configuration API exactly as an administrator scripts
// it (Basic login, cookie, transaction, commit) and show that the running proxy follows each commit without a
// restart: every case checks both what the client gets and whether the origin saw the request.

// wantOrigin fails unless the origin received exactly n requests since its last Reset.
func wantOrigin(t *testing.T, o *origin, n int, why string) {
	t.Helper()
	if got := len(o.Requests()); got != n {
		t.Fatalf("%s: origin received %d requests, want %d", why, got, n)
	}
}

// TestPolicyClientNetwork: once the built-in default is switched off, only a policy whose network.clients holds
// the client's address admits it. Clients on 127.0.0.1 and 127.0.0.2 reach the same proxy listener.
func TestPolicyClientNetwork(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	a := newCfgAdmin(t, f.gh)
	c := f.credential(f.alpha, "client-net", nil)

	try := func(t *testing.T, from string, want int) {
		t.Helper()
		f.https.Reset()
		st, tn := connect(t, f, from, f.https.HostPort)
		if st != want {
			t.Fatalf("CONNECT from %s: %d, want %d", from, st, want)
		}
		if want != http.StatusOK {
			wantOrigin(t, f.https, 0, "refused tunnel")
			return
		}
		if st, body := tn.get("/api/items", c.Secret); st != http.StatusOK {
			t.Fatalf("GET from %s: %d %s", from, st, body)
		}
		checkInjected(t, only(t, f.https), alphaToken, c.Secret)
	}

	t.Run("default admits every client", func(t *testing.T) {
		try(t, "127.0.0.1", http.StatusOK)
		try(t, "127.0.0.2", http.StatusOK)
	})

	// The built-in default can be switched off (PUT active:false); a policy for 127.0.0.2 alone remains.
	a.setDefaultActive(false)
	key := a.connectionPolicy("only-127.0.0.2", []string{"127.0.0.2/32"}, []string{"0.0.0.0/0", "*"}, nil, nil)
	a.commit()
	t.Run("policy for 127.0.0.2 only", func(t *testing.T) {
		try(t, "127.0.0.1", http.StatusForbidden)
		try(t, "127.0.0.2", http.StatusOK)
		// Plain http (absolute-form) is a connection of its own and passes the same check.
		f.http.Reset()
		if st := plainGet(t, f, "127.0.0.1", f.http.URL+"/api/items", c.Secret); st != http.StatusForbidden {
			t.Errorf("absolute-form from 127.0.0.1: %d, want 403", st)
		}
		wantOrigin(t, f.http, 0, "refused absolute-form request")
	})

	// Narrowing the policy to a network holding neither client refuses both.
	a.edit(cfgConnections+"/"+key, func(b map[string]any) {
		b["network"].(map[string]any)["clients"] = []string{"10.0.0.0/8"}
	})
	a.commit()
	t.Run("policy for another network", func(t *testing.T) {
		try(t, "127.0.0.1", http.StatusForbidden)
		try(t, "127.0.0.2", http.StatusForbidden)
	})

	a.setDefaultActive(true)
	a.commit()
	t.Run("default back on", func(t *testing.T) {
		try(t, "127.0.0.1", http.StatusOK)
	})
}

// TestPolicyTargetNetwork: network.targets admits by CIDR (IP literals only) and by domain (names only, with
// "*.suffix" wildcards); api.e2e.test reaches the origin through the target's nat_target_host.
func TestPolicyTargetNetwork(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	a := newCfgAdmin(t, f.gh)
	c := f.credential(f.alpha, "target-net", nil)
	a.setDefaultActive(false)
	key := a.connectionPolicy("targets", []string{"0.0.0.0/0"}, []string{"10.0.0.0/8"}, nil, nil)
	a.commit()

	byIP, byName := f.https.HostPort, f.natHTTPS()
	for _, tc := range []struct {
		name    string
		targets []string
		admit   []string
		refuse  []string
	}{
		{"other network", []string{"10.0.0.0/8"}, nil, []string{byIP, byName}},
		{"loopback CIDR", []string{"127.0.0.0/8"}, []string{byIP}, []string{byName}},
		{"wildcard domain", []string{"*.e2e.test"}, []string{byName}, []string{byIP}},
		{"exact domain", []string{natHTTPSName}, []string{byName}, []string{byIP}},
		{"other domain", []string{"api.other.test", "*.example.com"}, nil, []string{byIP, byName}},
		{"CIDR and domain", []string{"127.0.0.1/32", "*.test"}, []string{byIP, byName}, nil},
	} {
		a.edit(cfgConnections+"/"+key, func(b map[string]any) { b["network"].(map[string]any)["targets"] = tc.targets })
		a.commit()
		t.Run(tc.name, func(t *testing.T) {
			for _, authority := range tc.refuse {
				f.https.Reset()
				if st, _ := connect(t, f, "", authority); st != http.StatusForbidden {
					t.Errorf("CONNECT %s: %d, want 403", authority, st)
				}
				wantOrigin(t, f.https, 0, "refused "+authority)
			}
			for _, authority := range tc.admit {
				f.https.Reset()
				tn := mustConnect(t, f, "", authority)
				if st, body := tn.get("/api/items", c.Secret); st != http.StatusOK {
					t.Fatalf("GET via %s: %d %s", authority, st, body)
				}
				if got := only(t, f.https); got.Host != authority {
					t.Errorf("origin saw Host %q, want %q", got.Host, authority)
				}
			}
		})
	}
}

// TestPolicyPort: network.ports restricts the target ports a policy admits; an empty list admits every port.
func TestPolicyPort(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	a := newCfgAdmin(t, f.gh)
	alpha := f.credential(f.alpha, "port-alpha", nil)
	beta := f.credential(f.beta, "port-beta", nil)
	a.setDefaultActive(false)
	key := a.connectionPolicy("ports", []string{"0.0.0.0/0"}, []string{"127.0.0.0/8"}, []int{atoi(t, port(f.https.HostPort))}, nil)
	a.commit()

	for _, tc := range []struct {
		name  string
		ports []int
		https bool // alpha's https origin admitted
		other bool // beta's origin admitted
		plain bool // alpha's plain http origin admitted
	}{
		{"only the https origin's port", []int{atoi(t, port(f.https.HostPort))}, true, false, false},
		{"only the other origin's port", []int{atoi(t, port(f.other.HostPort))}, false, true, false},
		{"the plain origin's port and 443", []int{443, atoi(t, port(f.http.HostPort))}, false, false, true},
		{"every port", []int{}, true, true, true},
	} {
		a.edit(cfgConnections+"/"+key, func(b map[string]any) { b["network"].(map[string]any)["ports"] = tc.ports })
		a.commit()
		t.Run(tc.name, func(t *testing.T) {
			for _, x := range []struct {
				o      *origin
				secret string
				admit  bool
			}{{f.https, alpha.Secret, tc.https}, {f.other, beta.Secret, tc.other}} {
				x.o.Reset()
				st, tn := connect(t, f, "", x.o.HostPort)
				switch {
				case x.admit && st == http.StatusOK:
					if st, body := tn.get("/api/items", x.secret); st != http.StatusOK {
						t.Errorf("GET %s: %d %s", x.o.HostPort, st, body)
					}
					wantOrigin(t, x.o, 1, "admitted "+x.o.HostPort)
				case !x.admit && st == http.StatusForbidden:
					wantOrigin(t, x.o, 0, "refused "+x.o.HostPort)
				default:
					t.Errorf("CONNECT %s: %d, admitted %v", x.o.HostPort, st, x.admit)
				}
			}
			f.http.Reset()
			want := http.StatusForbidden
			if tc.plain {
				want = http.StatusOK
			}
			if st := plainGet(t, f, "", f.http.URL+"/api/items", alpha.Secret); st != want {
				t.Errorf("absolute-form %s: %d, want %d", f.http.URL, st, want)
			}
			reached := 0
			if tc.plain {
				reached = 1
			}
			wantOrigin(t, f.http, reached, "plain origin")
		})
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("port %q: %v", s, err)
	}
	return n
}

// TestPolicyRateLimit: rate_limit caps new connections (CONNECTs, absolute-form requests) per minute with 429;
// requests inside a tunnel that was admitted do not count, and lifting the limit takes effect at once.
func TestPolicyRateLimit(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	a := newCfgAdmin(t, f.gh)
	c := f.credential(f.alpha, "rate", nil)
	const limit = 3
	// The built-in default stays on: a custom policy is tried first, so its limit applies.
	key := a.create(cfgConnections, map[string]any{"name": "limited",
		"network":    map[string]any{"clients": []string{"127.0.0.0/8"}, "targets": []string{"127.0.0.0/8"}},
		"rate_limit": map[string]any{"enabled": true, "value": limit}})
	a.commit()

	var first *tunnel
	for i := range limit {
		tn := mustConnect(t, f, "", f.https.HostPort)
		if st, body := tn.get("/api/items", c.Secret); st != http.StatusOK {
			t.Fatalf("request on connection %d: %d %s", i+1, st, body)
		}
		if first == nil {
			first = tn
		}
	}
	wantOrigin(t, f.https, limit, "connections within the limit")
	if st, _ := connect(t, f, "", f.https.HostPort); st != http.StatusTooManyRequests {
		t.Fatalf("connection %d within a minute: %d, want 429", limit+1, st)
	}
	f.http.Reset()
	if st := plainGet(t, f, "", f.http.URL+"/api/items", c.Secret); st != http.StatusTooManyRequests {
		t.Errorf("absolute-form request over the limit: %d, want 429", st)
	}
	wantOrigin(t, f.http, 0, "absolute-form request over the limit")
	wantOrigin(t, f.https, limit, "refused connection")

	// The tunnels already admitted keep working: their requests are not new connections.
	for range limit {
		if st, body := first.get("/api/items", c.Secret); st != http.StatusOK {
			t.Fatalf("request in an admitted tunnel after the limit: %d %s", st, body)
		}
	}
	wantOrigin(t, f.https, 2*limit, "requests in an admitted tunnel")

	a.edit(cfgConnections+"/"+key, func(b map[string]any) { b["rate_limit"] = map[string]any{"enabled": false} })
	a.commit()
	tn := mustConnect(t, f, "", f.https.HostPort)
	if st, body := tn.get("/api/items", c.Secret); st != http.StatusOK {
		t.Fatalf("after lifting the limit: %d %s", st, body)
	}
}

// TestPolicyChannelAndUserList: the channel policy allows http only for a role, then only for the users a user
// list admits, and denies websocket while http stays allowed. Refused requests never reach the origin.
func TestPolicyChannelAndUserList(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	a := newCfgAdmin(t, f.gh)
	ws := startWSOrigin(t, f)
	contractors := f.gh.Create(rolesAPI+"/roles", f.adm, map[string]any{"name": "contractors", "permissions": []string{"api-proxy-credentials-own"}})
	gamma := f.gh.Create(proxyAPI+"/api-targets", f.adm, map[string]any{
		"name": "gamma", "roles": []map[string]string{{"id": f.roleID}, {"id": contractors}}, "tls_trust_anchors": f.ca.pem,
		"authorized_endpoints": []map[string]any{
			{"host": ws.HostPort, "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/**"}},
		},
		"target_credential": map[string]any{"type": "token", "bearer_token": "gamma-upstream-token-55555"},
	})
	alice := f.credential(gamma, "channel-alice", nil) // alice holds api-users
	bob := userWithRole(t, f, "bob", gamma, contractors)

	type want struct{ aliceHTTP, bobHTTP, aliceWS int }
	check := func(t *testing.T, w want) {
		t.Helper()
		before := len(ws.Requests())
		reached := 0
		for _, x := range []struct {
			who    string
			secret string
			ws     bool
			want   int
		}{{"alice http", alice.Secret, false, w.aliceHTTP}, {"bob http", bob.Secret, false, w.bobHTTP}, {"alice websocket", alice.Secret, true, w.aliceWS}} {
			tn := mustConnect(t, f, "", ws.HostPort)
			var st int
			if x.ws {
				st = tn.upgrade("/ws", x.secret)
			} else {
				st, _ = tn.get("/api/items", x.secret)
			}
			if st != x.want {
				t.Errorf("%s: %d, want %d", x.who, st, x.want)
			}
			if st < 400 {
				reached++
			}
		}
		if got := len(ws.Requests()) - before; got != reached {
			t.Errorf("origin received %d requests, want %d (only the admitted ones): %q", got, reached, ws.Requests()[before:])
		}
	}

	t.Run("default allows both channels to all", func(t *testing.T) {
		check(t, want{http.StatusOK, http.StatusOK, http.StatusSwitchingProtocols})
	})

	channel := a.create(cfgChannels, map[string]any{"name": "http-for-api-users", "rules": []map[string]any{
		{"channels": []string{"http"}, "allowed_for": map[string]any{"gateway_groups": []string{"api-users"}}},
	}})
	a.connectionPolicy("channel", []string{"0.0.0.0/0"}, []string{"127.0.0.0/8"}, nil, map[string]string{"channel_policy": channel})
	a.commit()
	t.Run("http for a role, no websocket", func(t *testing.T) {
		check(t, want{http.StatusOK, http.StatusForbidden, http.StatusForbidden})
	})

	notAlice := a.create(cfgUserlists, map[string]any{"name": "everyone-but-alice", "allow": "all_users", "except": []string{"alice"}})
	a.edit(cfgChannels+"/"+channel, func(b map[string]any) {
		b["rules"] = []map[string]any{{"channels": []string{"http", "websocket"}, "allowed_for": map[string]any{"userlists": []string{notAlice}}}}
	})
	a.commit()
	t.Run("user list excludes alice", func(t *testing.T) {
		check(t, want{http.StatusForbidden, http.StatusOK, http.StatusForbidden})
	})

	a.edit(cfgUserlists+"/"+notAlice, func(b map[string]any) { b["except"] = []string{"bob"} })
	a.commit()
	t.Run("user list excludes bob instead", func(t *testing.T) {
		check(t, want{http.StatusOK, http.StatusForbidden, http.StatusSwitchingProtocols})
	})
}

// TestPolicyTimeouts: a settings policy's idle_timeout or session_timeout (stricter than the global settings)
// closes the API session; the next request on the same tunnel opens a new one.
func TestPolicyTimeouts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings map[string]any
		reason   string
	}{
		{"idle timeout", map[string]any{"idle_timeout": 1}, "idle timeout"},
		{"session timeout", map[string]any{"idle_timeout": 900, "session_timeout": 1}, "lifetime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, testserver.Options{})
			a := newCfgAdmin(t, f.gh)
			c := f.credential(f.alpha, "timeouts", nil)
			tc.settings["name"] = "short"
			settings := a.create(cfgSettings, tc.settings)
			a.connectionPolicy("short", []string{"0.0.0.0/0"}, []string{"127.0.0.0/8"}, nil, map[string]string{"settings": settings})
			a.commit()

			tn := mustConnect(t, f, "", f.https.HostPort)
			if st, body := tn.get("/api/items", c.Secret); st != http.StatusOK {
				t.Fatalf("first request: %d %s", st, body)
			}
			first := f.session(c.ID)
			// The sessions manager ticks every second; the session closes one to two seconds after it is due.
			closed := f.waitConnection(c.ID, func(x connection) bool { return x.ID == first && x.Status == "DISCONNECTED" })
			if !strings.Contains(closed.TerminationReason, tc.reason) {
				t.Errorf("closed session's reason %q, want %q", closed.TerminationReason, tc.reason)
			}
			if st, body := tn.get("/api/items", c.Secret); st != http.StatusOK {
				t.Fatalf("request after the timeout: %d %s", st, body)
			}
			second := f.waitConnection(c.ID, func(x connection) bool { return x.Status == "CONNECTED" })
			if second.ID == first {
				t.Fatalf("the request after the timeout reused session %s", first)
			}
			wantOrigin(t, f.https, 2, "both requests")
		})
	}
}

// TestPolicyRecording: an audit policy with record:false leaves an audited target's session without a trail;
// with record:true the trail is written with the policy's body_limit and redact_headers.
func TestPolicyRecording(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	a := newCfgAdmin(t, f.gh)
	audit := a.create(cfgAudit, map[string]any{"name": "no-recording", "record": false})
	a.connectionPolicy("audit", []string{"0.0.0.0/0"}, []string{"127.0.0.0/8"}, nil, map[string]string{"audit_policy": audit})
	a.commit()

	session := func(t *testing.T, name string) (connection, cred) {
		t.Helper()
		c := f.credential(f.alpha, name, nil)
		tn := mustConnect(t, f, "", f.https.HostPort)
		if st, body := tn.get("/api/headers", c.Secret, "X-Team-Secret", "team-secret-value"); st != http.StatusOK {
			t.Fatalf("request: %d %s", st, body)
		}
		id := f.session(c.ID)
		f.gh.JSON("POST", connsAPI+"/terminate/connection/"+id, f.adm, nil, http.StatusOK, nil)
		return f.waitConnection(c.ID, func(x connection) bool { return x.ID == id && x.Status != "CONNECTED" }), c
	}

	t.Run("record off", func(t *testing.T) {
		f.https.Reset()
		conn, _ := session(t, "unrecorded")
		wantOrigin(t, f.https, 1, "unrecorded request")
		if conn.AuditEnabled {
			t.Errorf("session %s is marked audited", conn.ID)
		}
		st, body := f.gh.Do("GET", connsAPI+"/connections/"+conn.ID+"/trail", f.adm, nil)
		if st != http.StatusNotFound || !strings.Contains(string(body), "NO_TRAIL") {
			t.Errorf("trail of an unrecorded session: %d %s, want 404 NO_TRAIL", st, body)
		}
	})

	const limit = 16
	a.edit(cfgAudit+"/"+audit, func(b map[string]any) {
		b["record"], b["body_limit"], b["redact_headers"] = true, limit, []string{"X-Team-Secret"}
	})
	a.commit()
	t.Run("record on with body limit and redaction", func(t *testing.T) {
		conn, c := session(t, "recorded")
		if !conn.AuditEnabled {
			t.Errorf("session %s is not marked audited", conn.ID)
		}
		st, raw := f.gh.Do("GET", connsAPI+"/connections/"+conn.ID+"/trail", f.adm, nil)
		if st != http.StatusOK {
			t.Fatalf("trail: %d %s", st, raw)
		}
		noSecret(t, "the trail", string(raw), c.Secret, alphaToken, "team-secret-value")
		var trail struct {
			Items []trailExchange `json:"items"`
		}
		if err := json.Unmarshal(raw, &trail); err != nil || len(trail.Items) != 1 {
			t.Fatalf("trail: %v, %s", err, raw)
		}
		x := trail.Items[0]
		if got := x.RequestHeaders["X-Team-Secret"]; len(got) != 1 || !strings.Contains(got[0], "REDACTED") {
			t.Errorf("recorded X-Team-Secret %q, want it redacted by the audit policy", got)
		}
		// /api/headers answers the request headers as JSON, far more than the limit.
		if !x.ResponseBodyTruncated || len(x.ResponseBody) > limit || x.ResponseBytes <= limit {
			t.Errorf("response body recorded %d of %d bytes (truncated %v), want at most %d", len(x.ResponseBody), x.ResponseBytes, x.ResponseBodyTruncated, limit)
		}
	})
}

// TestPolicyRecheckOpenTunnel: a commit applies to a keep-alive tunnel opened before it at its next request.
func TestPolicyRecheckOpenTunnel(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	a := newCfgAdmin(t, f.gh)
	c := f.credential(f.alpha, "recheck", nil)
	tn := mustConnect(t, f, "127.0.0.1", f.https.HostPort)
	if st, body := tn.get("/api/items", c.Secret); st != http.StatusOK {
		t.Fatalf("before the commit: %d %s", st, body)
	}

	a.setDefaultActive(false)
	a.connectionPolicy("elsewhere", []string{"10.0.0.0/8"}, []string{"0.0.0.0/0"}, nil, nil)
	a.commit()
	if st, body := tn.get("/api/items", c.Secret); st != http.StatusForbidden {
		t.Fatalf("same tunnel after the commit: %d %s, want 403", st, body)
	}
	wantOrigin(t, f.https, 1, "request after the commit")

	a.setDefaultActive(true)
	a.commit()
	if st, body := tn.get("/api/items", c.Secret); st != http.StatusOK {
		t.Fatalf("same tunnel after restoring the default: %d %s", st, body)
	}
	wantOrigin(t, f.https, 2, "request after restoring the default")
}

// TestPolicyRecordingSwitchedOnMidSession: when a commit switches recording on, an API session opened unrecorded
// ends at its next request and a recorded one takes over. Before the fix in sessions.Manager.Begin the audited
// requests of the unrecorded session failed the recorder, which then closed every audited target with 503.
func TestPolicyRecordingSwitchedOnMidSession(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	a := newCfgAdmin(t, f.gh)
	audit := a.create(cfgAudit, map[string]any{"name": "no-recording", "record": false})
	a.connectionPolicy("audit", []string{"0.0.0.0/0"}, []string{"127.0.0.0/8"}, nil, map[string]string{"audit_policy": audit})
	a.commit()
	c := f.credential(f.alpha, "switch", nil)
	tn := mustConnect(t, f, "", f.https.HostPort)
	if st, body := tn.get("/api/items", c.Secret); st != http.StatusOK {
		t.Fatalf("unrecorded request: %d %s", st, body)
	}
	first := f.session(c.ID)

	a.edit(cfgAudit+"/"+audit, func(b map[string]any) { b["record"] = true })
	a.commit()
	for i := range 2 {
		if st, body := tn.get("/api/items", c.Secret); st != http.StatusOK {
			t.Fatalf("request %d after switching recording on: %d %s", i+1, st, body)
		}
	}
	old := f.waitConnection(c.ID, func(x connection) bool { return x.ID == first && x.Status != "CONNECTED" })
	if old.AuditEnabled || !strings.Contains(old.TerminationReason, "recording") {
		t.Errorf("the unrecorded session: audited %v, reason %q", old.AuditEnabled, old.TerminationReason)
	}
	second := f.session(c.ID)
	f.gh.JSON("POST", connsAPI+"/terminate/connection/"+second, f.adm, nil, http.StatusOK, nil)
	var trail struct {
		Count int `json:"count"`
	}
	f.gh.JSON("GET", connsAPI+"/connections/"+second+"/trail", f.adm, nil, http.StatusOK, &trail)
	if trail.Count != 2 {
		t.Errorf("the new session's trail holds %d exchanges, want the 2 requests after the switch", trail.Count)
	}
	// Other audited sessions were never closed by a failed recorder.
	other := f.credential(f.alpha, "switch-other", nil)
	if st, body := mustConnect(t, f, "", f.https.HostPort).get("/api/items", other.Secret); st != http.StatusOK {
		t.Fatalf("another audited session after the switch: %d %s", st, body)
	}
	wantOrigin(t, f.https, 4, "every request")
}
