package store_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/testpg"
)

func TestMain(m *testing.M) { testpg.Main(m) }

// env is one store under test together with a second, raw connection to the same database, so tests can look at
// what the store really wrote.
type env struct {
	S      *store.Store
	Raw    *sql.DB
	Keys   *secrets.Keyring
	DSN    string
	pg     bool
	reopen func(t *testing.T) *store.Store
}

// engines runs body once on SQLite (a file in t.TempDir) and once on a fresh PostgreSQL database.
func engines(t *testing.T, body func(t *testing.T, e *env)) {
	t.Helper()
	for _, pg := range []bool{false, true} {
		name := "sqlite"
		if pg {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) { body(t, newEnv(t, pg)) })
	}
}

func newEnv(t *testing.T, pg bool) *env {
	t.Helper()
	master := make([]byte, secrets.MasterKeySize)
	if _, err := rand.Read(master); err != nil {
		t.Fatal(err)
	}
	keys, err := secrets.NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{Keys: keys, pg: pg}
	if pg {
		e.DSN = testpg.New(t)
	} else {
		e.DSN = filepath.Join(t.TempDir(), "gatehouse.db")
	}
	e.reopen = func(t *testing.T) *store.Store {
		t.Helper()
		s, err := store.Open(context.Background(), e.DSN, keys, nil)
		if err != nil {
			t.Fatalf("open store: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	e.S = e.reopen(t)
	if pg {
		e.Raw, err = sql.Open("pgx", e.DSN)
	} else {
		e.Raw, err = sql.Open("sqlite", "file:"+e.DSN+"?_pragma=busy_timeout(10000)")
	}
	if err != nil {
		t.Fatalf("open raw connection: %v", err)
	}
	t.Cleanup(func() { e.Raw.Close() })
	return e
}

// exec runs a raw statement written with ? placeholders on either engine.
func (e *env) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := e.Raw.Exec(e.bind(q), args...); err != nil {
		t.Fatalf("raw exec %q: %v", q, err)
	}
}

func (e *env) bind(q string) string {
	if !e.pg {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// dumpTable returns every value of every row of table as text, the way a database dump would show it.
func (e *env) dumpTable(t *testing.T, table string) string {
	t.Helper()
	rows, err := e.Raw.Query("SELECT * FROM " + table)
	if err != nil {
		t.Fatalf("dump %s: %v", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		for i, v := range vals {
			if bs, ok := v.([]byte); ok {
				v = string(bs)
			}
			fmt.Fprintf(&b, "%s=%v\t", cols[i], v)
		}
		b.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

var ctx = context.Background()

func mustUser(t *testing.T, s *store.Store, name string) *model.User {
	t.Helper()
	u := &model.User{Username: name, Email: name + "@example.com", FullName: "Full " + name, Enabled: true, PasswordHash: "$argon2id$fake"}
	if err := s.CreateUser(ctx, u, "tester"); err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	return u
}

func mustRole(t *testing.T, s *store.Store, name string, perms ...string) *model.Role {
	t.Helper()
	r := &model.Role{Name: name, Comment: "comment of " + name, Permissions: perms}
	if err := s.CreateRole(ctx, r, "tester"); err != nil {
		t.Fatalf("create role %s: %v", name, err)
	}
	return r
}

func newTarget(name string, roles ...*model.Role) *model.Target {
	refs := []model.Ref{}
	for _, r := range roles {
		refs = append(refs, model.Ref{ID: r.ID, Name: r.Name})
	}
	return &model.Target{
		Name: name, Comment: "target " + name, Tags: []string{"prod", "k8s"}, Roles: refs,
		AuthorizedEndpoints: []policy.Endpoint{{Host: name + ".example.com:443", Protocols: []string{"https"},
			Methods: []string{"GET"}, Paths: []string{"/api/**"}}},
		UnauthorizedEndpoints: []policy.Endpoint{},
		Credential:            model.TargetCredential{Type: "token", BearerToken: "bearer-of-" + name},
		AuditEnabled:          true,
	}
}

func mustTarget(t *testing.T, s *store.Store, name string, roles ...*model.Role) *model.Target {
	t.Helper()
	tg := newTarget(name, roles...)
	if err := s.CreateTarget(ctx, tg, "tester"); err != nil {
		t.Fatalf("create target %s: %v", name, err)
	}
	return tg
}

func mustCredential(t *testing.T, s *store.Store, u *model.User, tg *model.Target, name, secret string) *model.ProxyCredential {
	t.Helper()
	now := time.Now().UTC()
	c := &model.ProxyCredential{UserID: u.ID, TargetID: tg.ID, Name: name, NotBefore: now, NotAfter: now.Add(time.Hour),
		SourceAddress: []string{"10.0.0.0/8"}, Enabled: true, Secret: secret}
	if err := s.CreateCredential(ctx, c, "tester"); err != nil {
		t.Fatalf("create credential %s: %v", name, err)
	}
	return c
}
