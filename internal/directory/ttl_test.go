package directory

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/directory/ldaptest"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TestTTLSchedulesSyncs: a source is synced again once its ttl has run out since its last sync, and not before; a
// ttl of 0 means no scheduled sync. The clock is a fake one, moved by hand.
func TestTTLSchedulesSyncs(t *testing.T) {
	srv := ldaptest.Start(t)
	st := openStore(t)
	var mu sync.Mutex
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	d := &Directory{Store: st, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }}
	advance := func(dt time.Duration) { mu.Lock(); now = now.Add(dt); mu.Unlock() }
	ctx := context.Background()

	timed := ldapSource(srv, ProtocolLDAP)
	timed.Name, timed.TTL = "timed", 60
	timedID := createdSource(t, st, timed)
	manual := ldapSource(srv, ProtocolLDAP)
	manual.Name, manual.TTL, manual.UsernamePattern = "manual", 0, []string{"*@manual"}
	manualID := createdSource(t, st, manual)
	d.syncDue(ctx, true)
	d.Wait()
	synced := func(id string) time.Time {
		s, err := st.Source(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return s.LastSync
	}
	first, firstManual := synced(timedID), synced(manualID)
	if first.IsZero() || firstManual.IsZero() {
		t.Fatalf("start-up sync did not run: %v %v", first, firstManual)
	}
	srv.AddUser(t, "dave", "dave-pass-1")

	advance(30 * time.Second)
	d.syncDue(ctx, false)
	d.Wait()
	if got := synced(timedID); !got.Equal(first) {
		t.Fatalf("synced again after 30s of a 60s ttl (last sync %v, was %v)", got, first)
	}
	if _, ok := directoryUsers(t, st)["dave"]; ok {
		t.Fatal("dave arrived before the ttl ran out")
	}

	advance(31 * time.Second)
	d.syncDue(ctx, false)
	d.Wait()
	if got := synced(timedID); !got.After(first) {
		t.Fatalf("not synced after the 60s ttl ran out (last sync %v)", got)
	}
	if u, ok := directoryUsers(t, st)["dave"]; !ok || u.Source != timedID {
		t.Fatalf("dave after the scheduled sync: %+v %v", u, ok)
	}
	advance(24 * time.Hour)
	d.syncDue(ctx, false)
	d.Wait()
	if got := synced(manualID); !got.Equal(firstManual) {
		t.Fatalf("the ttl 0 source was synced on a schedule (last sync %v, was %v)", got, firstManual)
	}
}

// createdSource stores src and returns its id.
func createdSource(t *testing.T, st *store.Store, src *Source) string {
	t.Helper()
	if err := src.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	stored := src.ToStored()
	if err := st.CreateSource(context.Background(), stored, "test"); err != nil {
		t.Fatal(err)
	}
	return stored.ID
}

// TestLocalUsernamePattern: username_pattern on the LOCAL source claims login names for the local store, so a
// directory without patterns (which otherwise takes every unknown name) is not asked about them.
func TestLocalUsernamePattern(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	d := &Directory{Store: st}
	open := &Source{Name: "unreachable", Enabled: true, Settings: Settings{Connection: Connection{
		Type: TypeLDAP, Address: "127.0.0.1", Port: 1, LDAPBase: "dc=example,dc=org"}}}
	createdSource(t, st, open)
	if _, err := d.Authenticate(ctx, "svc@local", "pw"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("without a LOCAL pattern the open directory decides (and is down): %v", err)
	}
	stored, err := st.Source(ctx, store.LocalSourceID)
	if err != nil {
		t.Fatal(err)
	}
	local, err := FromStored(stored)
	if err != nil {
		t.Fatal(err)
	}
	local.UsernamePattern = []string{"*@local"}
	if err := local.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := st.UpdateSource(ctx, local.ToStored(), "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Authenticate(ctx, "svc@local", "pw"); !errors.Is(err, ErrNotDirectoryUser) {
		t.Fatalf("a name the LOCAL pattern matches: %v, want ErrNotDirectoryUser (the local store decides)", err)
	}
	if _, err := d.Authenticate(ctx, "someone-else", "pw"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a name the LOCAL pattern does not match: %v, want the open directory to be asked", err)
	}
}
