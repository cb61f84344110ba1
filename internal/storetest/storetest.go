// Package storetest opens real stores for tests: SQLite in the test's temporary directory, or a database of its
// own on the test PostgreSQL (internal/testpg), each closed when the test ends. A package whose tests use
// PostgreSQL runs testpg.Main from its TestMain.
package storetest

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/testpg"
)

// Keys returns a keyring under a fresh random master key.
func Keys(t testing.TB) *secrets.Keyring {
	t.Helper()
	master := make([]byte, secrets.MasterKeySize)
	rand.Read(master)
	keys, err := secrets.NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// Open opens the store at dsn (a SQLite path or a PostgreSQL URL) sealed with keys, and closes it when the test
// ends.
func Open(t testing.TB, dsn string, keys *secrets.Keyring) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// SQLite opens a fresh SQLite store in the test's temporary directory under fresh keys.
func SQLite(t testing.TB) *store.Store {
	t.Helper()
	return Open(t, filepath.Join(t.TempDir(), "gatehouse.db"), Keys(t))
}

// New opens a fresh store under fresh keys: a PostgreSQL database of its own when pg is set, else SQLite.
func New(t testing.TB, pg bool) *store.Store {
	t.Helper()
	if pg {
		return Open(t, testpg.New(t), Keys(t))
	}
	return SQLite(t)
}

// Engines opens one fresh store on each engine, by name ("sqlite", "postgres"), sharing keys.
func Engines(t testing.TB, keys *secrets.Keyring) map[string]*store.Store {
	t.Helper()
	return map[string]*store.Store{
		"sqlite":   Open(t, filepath.Join(t.TempDir(), "gatehouse.db"), keys),
		"postgres": Open(t, testpg.New(t), keys),
	}
}
