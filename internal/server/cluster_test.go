package server

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/ca"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
)

// TestExistingCAIsAdopted pins the upgrade path: a data dir whose CA was made before the database held it keeps
// that CA (clients trust its root), which moves into the database; its keys are not written anywhere in clear.
func TestExistingCAIsAdopted(t *testing.T) {
	cfg := testConfig(t)
	master, err := secrets.LoadOrCreateMasterKey(cfg.MasterKeyPath())
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := secrets.NewKeyring(master)
	old, err := ca.Open(filepath.Join(cfg.DataDir, "ca"), keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, stop := run(t, cfg, Options{})
	if !srv.CA().Root().Equal(old.Root()) {
		t.Fatal("the server made a new CA instead of adopting the data dir's")
	}
	for _, name := range []string{"root.crt", "root.key.sealed", "intermediate.crt", "intermediate.key.sealed"} {
		if _, err := srv.Store().Blob(context.Background(), "ca/"+name); err != nil {
			t.Errorf("%s not in the database: %v", name, err)
		}
	}
	stop()
	// The data dir's CA files can go: the database has the CA.
	for _, name := range []string{"root.key.sealed", "intermediate.key.sealed", "intermediate.crt"} {
		os.Remove(filepath.Join(cfg.DataDir, "ca", name))
	}
	srv, stop = run(t, cfg, Options{})
	defer stop()
	if !srv.CA().Root().Equal(old.Root()) {
		t.Error("after losing the data dir's CA files the server has another CA")
	}
}
