package serviceapi_test

import (
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testca"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// leakScan collects everything that must not hold a secret in clear and reports where a planted secret shows up.
type leakScan struct {
	secrets map[string]string // secret -> what it is
}

func (s *leakScan) plant(what, secret string) {
	if s.secrets == nil {
		s.secrets = map[string]string{}
	}
	s.secrets[secret] = what
}

// find returns a description of every planted secret in data, which came from where.
func (s *leakScan) find(where string, data []byte) []string {
	var hits []string
	for secret, what := range s.secrets {
		if strings.Contains(string(data), secret) {
			hits = append(hits, fmt.Sprintf("%s in clear in %s", what, where))
		}
	}
	return hits
}

// scanDir reads every file under dir as raw bytes.
func (s *leakScan) scanDir(t *testing.T, dir string) (hits []string, files int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		hits = append(hits, s.find(path, b)...)
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", dir, err)
	}
	return hits, files
}

// scanPostgres reads every text-castable column of every table, the part of a pg_dump a secret could be in.
func (s *leakScan) scanPostgres(t *testing.T, dsn string) (hits []string, values int) {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	type col struct{ table, column string }
	var cols []col
	for rows.Next() {
		var c col
		if err := rows.Scan(&c.table, &c.column); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	rows.Close()
	if len(cols) == 0 {
		t.Fatal("no columns found in the public schema")
	}
	for _, c := range cols {
		vals, err := db.Query(fmt.Sprintf(`SELECT %q::text FROM %q`, c.column, c.table))
		if err != nil {
			t.Fatalf("read %s.%s: %v", c.table, c.column, err)
		}
		for vals.Next() {
			var v sql.NullString
			if err := vals.Scan(&v); err != nil {
				t.Fatal(err)
			}
			values++
			hits = append(hits, s.find(c.table+"."+c.column, []byte(v.String))...)
		}
		vals.Close()
	}
	return hits, values
}

// leakRecorder sends requests and keeps every answer except those of the secret-retrieval endpoints.
type leakRecorder struct {
	t       *testing.T
	gh      *testserver.Instance
	answers []string
}

func (r *leakRecorder) do(method, path, token string, body any) (int, []byte) {
	r.t.Helper()
	status, b := r.gh.Do(method, path, token, body)
	r.answers = append(r.answers, fmt.Sprintf("%s %s -> %d %s", method, path, status, b))
	return status, b
}

func (r *leakRecorder) want(method, path, token string, body any, want int) []byte {
	r.t.Helper()
	status, b := r.do(method, path, token, body)
	if status != want {
		r.t.Fatalf("%s %s: %d, want %d: %s", method, path, status, want, b)
	}
	return b
}

func (r *leakRecorder) token(req tokReq) tokAnswer {
	r.t.Helper()
	a := tokPost(r.t, r.gh, req)
	r.answers = append(r.answers, fmt.Sprintf("POST %s -> %d %s", tokenPath, a.Status, a.Raw))
	return a
}

// leakPEMBody is the first line of a PEM block's base64 body: the part that survives any encoding (JSON escapes the
// newlines of a whole PEM, so searching for it would miss a leak).
func leakPEMBody(p string) string { return strings.Split(p, "\n")[1] }

func leakCertAndKey(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	leaf, err := testca.New(t, "leak CA").Issue(x509.ExtKeyUsageClientAuth, "gatehouse-client")
	if err != nil {
		t.Fatal(err)
	}
	return string(leaf.CertPEM), string(leaf.KeyPEM)
}

// TestScannerFindsPlantedSecret proves the scanner can fail: a secret written to a file, in a log line and in a
// JSON-escaped PEM is found.
func TestScannerFindsPlantedSecret(t *testing.T) {
	var s leakScan
	_, key := leakCertAndKey(t)
	s.plant("canary", "Canary-secret-41d7")
	s.plant("key", leakPEMBody(key))
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "leak.bin"), []byte("\x00\x01xxCanary-secret-41d7\xff"), 0o600); err != nil {
		t.Fatal(err)
	}
	if hits, files := s.scanDir(t, dir); len(hits) != 1 || files != 1 {
		t.Errorf("scanDir found %v in %d files, want the canary in 1", hits, files)
	}
	if hits := s.find("log", []byte(`{"msg":"x","key":"`+strings.ReplaceAll(key, "\n", `\n`)+`"}`)); len(hits) != 1 {
		t.Errorf("JSON-escaped PEM: %v", hits)
	}
}

// TestNoSecretInClear plants a distinctive secret everywhere one can go, uses every endpoint (including failed
// logins with wrong secrets), restarts, and then scans the data dir, the logs, the API answers, the audit trail
// and (on PostgreSQL) every column of every table.
func TestNoSecretInClear(t *testing.T) {
	for _, pg := range []bool{false, true} {
		t.Run(map[bool]string{false: "sqlite", true: "postgres"}[pg], func(t *testing.T) { testNoSecretInClear(t, pg) })
	}
}

func testNoSecretInClear(t *testing.T, pg bool) {
	gh := testserver.Start(t, testserver.Options{Postgres: pg})
	r := &leakRecorder{t: t, gh: gh}
	var scan leakScan
	const (
		userPw      = "Plant-user-pw-c41e"
		userPw2     = "Plant-user-pw2-9a0b"
		wrongPw     = "Plant-wrong-pw-6d2f"
		bearer      = "Plant-bearer-3b8e"
		bearer2     = "Plant-bearer2-f17c"
		basicPw     = "Plant-basic-pw-52ad"
		headerValue = "Plant-header-value-e903"
		wrongSecret = "Plant-wrong-client-secret-0c5a"
	)
	for what, v := range map[string]string{"user password": userPw, "changed user password": userPw2, "wrong password": wrongPw,
		"bearer token": bearer, "replaced bearer token": bearer2, "basic auth password": basicPw, "header value": headerValue,
		"wrong client secret": wrongSecret, "admin password": testserver.AdminPassword} {
		scan.plant(what, v)
	}
	certPEM, keyPEM := leakCertAndKey(t)
	scan.plant("certificate private key", leakPEMBody(keyPEM))

	adm := r.token(tokReq{form: tokPasswordForm("admin", testserver.AdminPassword, "client_id", "gatehouse-cli")}).AccessToken
	const (
		users   = "/local-user-store/api/v1/users"
		clients = "/local-user-store/api/v1/api-clients"
		roles   = "/role-store/api/v1/roles"
		targets = "/api-proxy/api/v1/api-targets"
	)
	id := func(b []byte) string {
		var out struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(b, &out); err != nil || out.ID == "" {
			t.Fatalf("no id in %s", b)
		}
		return out.ID
	}
	role := id(r.want("POST", roles, adm, map[string]any{"name": "devs", "permissions": []string{"api-proxy-credentials-own", "users-view"}}, 201))
	user := id(r.want("POST", users, adm, map[string]any{"username": "alice", "password": userPw, "email": "alice@example.com"}, 201))
	r.want("PUT", "/role-store/api/v1/users/"+user+"/roles", adm, []map[string]string{{"id": role}}, 200)
	r.want("PUT", users+"/"+user+"/password", adm, map[string]any{"password": userPw2}, 200)
	r.want("PUT", users+"/"+user, adm, map[string]any{"full_name": "Alice A"}, 200)
	r.do("POST", users, adm, map[string]any{"username": "alice", "password": userPw}) // 409: duplicate
	r.do("POST", users, adm, map[string]any{"username": "short", "password": "x"})    // 400: too short

	client := id(r.want("POST", clients, adm, map[string]any{"name": "ci", "roles": []map[string]string{{"id": role}}}, 201))
	var creds tokClientCreds
	status, b := gh.Do("GET", clients+"/"+client, adm, nil) // a secret-retrieval endpoint: not recorded
	if status != 200 || json.Unmarshal(b, &creds) != nil || creds.Secret == "" || creds.OAuthClientSecret == "" {
		t.Fatalf("read api client credentials: %d %s", status, b)
	}
	scan.plant("api client secret", creds.Secret)
	scan.plant("oauth client secret", creds.OAuthClientSecret)
	r.want("PUT", clients+"/"+client, adm, map[string]any{"name": "ci-renamed", "secret": "ignored"}, 200)

	ep := []map[string]any{{"host": "api.example.com:443", "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/**"}}}
	tgt := id(r.want("POST", targets, adm, map[string]any{"name": "tok", "roles": []map[string]string{{"id": role}}, "tags": []string{"prod"},
		"authorized_endpoints": ep, "target_credential": map[string]any{"type": "token", "bearer_token": bearer}}, 201))
	r.want("POST", targets, adm, map[string]any{"name": "basic", "authorized_endpoints": ep,
		"target_credential": map[string]any{"type": "basicauth", "basic_auth_username": "svc", "basic_auth_password": basicPw}}, 201)
	r.want("POST", targets, adm, map[string]any{"name": "header", "authorized_endpoints": ep,
		"target_credential": map[string]any{"type": "header", "header_name": "X-Api-Key", "header_value": headerValue}}, 201)
	r.want("POST", targets, adm, map[string]any{"name": "cert", "authorized_endpoints": ep,
		"target_credential": map[string]any{"type": "certificate", "certificate": certPEM, "private_key": keyPEM}}, 201)
	// Refused writes carrying secrets must not echo them.
	r.want("POST", targets, adm, map[string]any{"name": "bad", "authorized_endpoints": []map[string]any{{"host": "bad host", "protocols": []string{"https"}}},
		"target_credential": map[string]any{"type": "token", "bearer_token": bearer2}}, 400)
	r.want("POST", targets, adm, map[string]any{"name": "tok", "authorized_endpoints": ep,
		"target_credential": map[string]any{"type": "token", "bearer_token": bearer2}}, 409)
	r.want("POST", targets, adm, map[string]any{"name": "badkey", "authorized_endpoints": ep,
		"target_credential": map[string]any{"type": "certificate", "certificate": certPEM, "private_key": headerValue}}, 400)
	r.want("PUT", targets+"/"+tgt, adm, map[string]any{"comment": "secret kept"}, 200)
	r.want("PUT", targets+"/"+tgt, adm, map[string]any{"target_credential": map[string]any{"type": "token", "bearer_token": bearer2}}, 200)

	alice := r.token(tokReq{form: tokPasswordForm("alice", userPw2, "client_id", "gatehouse-cli")})
	if alice.Status != 200 {
		t.Fatalf("alice login: %s", alice.Raw)
	}
	credPath := "/api-proxy/api/v1/users/current/client-credentials"
	cred := id(r.want("POST", credPath, alice.AccessToken, map[string]any{"name": "laptop", "target": map[string]string{"id": tgt},
		"source_address": []string{"10.0.0.0/8"}}, 201))
	status, secret := gh.Do("GET", credPath+"/"+cred+"/secret", alice.AccessToken, nil) // secret retrieval: not recorded
	if status != 200 || len(secret) < 20 {
		t.Fatalf("credential secret: %d %s", status, secret)
	}
	scan.plant("proxy credential secret", string(secret))
	if status, kc := gh.Do("GET", credPath+"/"+cred+"/secret?format=kubeconfig", alice.AccessToken, nil); status != 200 || !strings.Contains(string(kc), string(secret)) {
		t.Errorf("kubeconfig does not carry the secret: %d", status)
	}
	r.want("PUT", credPath+"/"+cred, alice.AccessToken, map[string]any{"comment": "mine"}, 200)

	// Failures with wrong secrets (fewer than the limiter's five per address).
	r.token(tokReq{form: tokPasswordForm("alice", wrongPw, "client_id", "gatehouse-cli")})
	r.token(tokReq{form: tokPasswordForm(creds.ID, wrongSecret), basic: []string{creds.OAuthClientID, creds.OAuthClientSecret}})
	r.token(tokReq{form: tokPasswordForm(creds.ID, creds.Secret), basic: []string{creds.OAuthClientID, wrongSecret}})
	r.want("GET", users, string(secret), nil, 401) // a proxy secret is not an API token
	r.want("GET", users, bearer, nil, 401)
	ci := r.token(tokReq{form: tokPasswordForm(creds.ID, creds.Secret), basic: []string{creds.OAuthClientID, creds.OAuthClientSecret}})
	if ci.Status != 200 {
		t.Fatalf("api client login: %s", ci.Raw)
	}
	r.token(tokReq{form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {alice.RefreshToken}}})

	exercise := func(adm, ciToken, aliceToken string) {
		for _, p := range []string{users, users + "/" + user, clients, roles, roles + "/" + role, roles + "/" + role + "/members",
			"/role-store/api/v1/users/" + user + "/roles", targets, targets + "/" + tgt, targets + "/tags",
			"/api-proxy/api/v1/users/" + user + "/client-credentials", "/api-proxy/api/v1/users/" + user + "/client-credentials/" + cred,
			"/api-proxy/api/v1/conf", "/api-proxy/api/v1/status", "/api-proxy/api/v1/settings", "/audit/api/v1/events?limit=1000",
			"/auth/api/v1/users/current"} {
			r.want("GET", p, adm, nil, 200)
		}
		r.want("POST", targets+"/search", adm, map[string]any{"keywords": "tok"}, 200)
		r.want("PUT", "/api-proxy/api/v1/settings", adm, map[string]any{"idle_session_timeout": 600}, 200)
		r.want("GET", users, ciToken, nil, 200)
		r.want("GET", credPath, aliceToken, nil, 200)
		r.want("GET", credPath+"/"+cred, aliceToken, nil, 200)
		r.want("GET", targets, aliceToken, nil, 403)
	}
	exercise(adm, ci.AccessToken, alice.AccessToken)

	gh.Restart()
	adm = r.token(tokReq{form: tokPasswordForm("admin", testserver.AdminPassword, "client_id", "gatehouse-cli")}).AccessToken
	ci = r.token(tokReq{form: tokPasswordForm(creds.ID, creds.Secret), basic: []string{creds.OAuthClientID, creds.OAuthClientSecret}})
	alice = r.token(tokReq{form: tokPasswordForm("alice", userPw2, "client_id", "gatehouse-cli")})
	exercise(adm, ci.AccessToken, alice.AccessToken)
	r.want("DELETE", credPath+"/"+cred, alice.AccessToken, nil, 200)

	var hits []string
	check := func(where string, data string) { hits = append(hits, scan.find(where, []byte(data))...) }
	for i, a := range r.answers {
		check(fmt.Sprintf("API answer %d (%.80s)", i, a), a)
	}
	check("logs", gh.Logs.String())
	check("stdout", gh.Out.String())
	if pg {
		h, n := scan.scanPostgres(t, gh.Cfg.DB)
		if n < 50 {
			t.Errorf("the PostgreSQL scan read only %d values", n)
		}
		hits = append(hits, h...)
	}
	h, files := scan.scanDir(t, gh.Cfg.DataDir) // while running: the SQLite WAL and SHM are there
	hits = append(hits, h...)
	gh.Stop()
	h, _ = scan.scanDir(t, gh.Cfg.DataDir) // after shutdown: checkpointed database
	hits = append(hits, h...)
	if files < 2 {
		t.Errorf("the data dir scan read only %d files", files)
	}
	if len(r.answers) < 60 || !strings.Contains(strings.Join(r.answers, "\n"), "bearer_token_set") {
		t.Errorf("recorded %d answers; the response scan would prove little", len(r.answers))
	}
	for _, h := range uniqueHits(hits) {
		t.Error(h)
	}
}

func uniqueHits(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
