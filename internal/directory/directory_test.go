package directory

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-dev/gatehouse/internal/directory/ldaptest"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/storetest"
)

func openStore(t *testing.T) *store.Store { return storetest.SQLite(t) }

// ldapSource is a source for the test slapd with the given protocol.
func ldapSource(srv *ldaptest.Server, protocol string) *Source {
	pw := ldaptest.ReaderPassword
	port := srv.Port
	if protocol == ProtocolLDAPS {
		port = srv.TLSPort
	}
	return &Source{
		Name: "corp-" + protocol, Enabled: true, TTL: 0,
		Settings: Settings{Connection: Connection{
			Type: TypeLDAP, Address: srv.Host, Port: port, LDAPProtocol: protocol, LDAPBase: ldaptest.BaseDN,
			LDAPUserFilter: "(objectClass=inetOrgPerson)", LDAPBindDN: ldaptest.ReaderDN, LDAPBindPassword: &pw,
			TLSTrustAnchors: srv.CAPEM, AttributeMapping: map[string]string{"tags": "businessCategory"},
		}},
	}
}

func createSource(t *testing.T, st *store.Store, src *Source) string {
	t.Helper()
	if err := src.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if err := st.CreateSource(context.Background(), src.ToStored(), "test"); err != nil {
		t.Fatal(err)
	}
	return src.ToStored().ID
}

func sourceStatus(t *testing.T, st *store.Store, id string) (string, string) {
	t.Helper()
	s, err := st.Source(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s.StatusCode, s.StatusText
}

type userState struct {
	Enabled bool
	Source  string
	Groups  []string
	Tags    []string
}

func directoryUsers(t *testing.T, st *store.Store) map[string]userState {
	t.Helper()
	users, _, err := st.ListUsers(context.Background(), store.ListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]userState{}
	for _, u := range users {
		if u.Source == store.LocalSourceID {
			continue
		}
		info, err := st.DirectoryInfo(context.Background(), u.ID)
		if err != nil {
			t.Fatal(err)
		}
		out[u.Username] = userState{Enabled: u.Enabled, Source: u.Source, Groups: info.Groups, Tags: info.Tags}
	}
	return out
}

// TestSyncProtocols syncs the seeded directory over plain LDAP, LDAPS and StartTLS, each verified against the
// test CA, and checks users, groups (groupOfNames and groupOfUniqueNames) and mapped tags.
func TestSyncProtocols(t *testing.T) {
	srv := ldaptest.Start(t)
	for _, protocol := range []string{ProtocolLDAP, ProtocolLDAPS, ProtocolStartTLS} {
		t.Run(protocol, func(t *testing.T) {
			st := openStore(t)
			src := ldapSource(srv, protocol)
			src.ID = "src-" + protocol
			id := createSource(t, st, src)
			changes := 0
			d := &Directory{Store: st, OnChange: func(context.Context) { changes++ }}
			if err := d.Sync(context.Background(), id); err != nil {
				t.Fatalf("sync: %v", err)
			}
			if code, text := sourceStatus(t, st, id); code != StatusOK {
				t.Fatalf("status %s: %s", code, text)
			}
			if changes != 1 {
				t.Errorf("OnChange ran %d times, want 1", changes)
			}
			ops, dev := store.NormalizeDN(ldaptest.OpsGroupDN), store.NormalizeDN(ldaptest.DevGroupDN)
			want := map[string]userState{
				"alice": {Enabled: true, Source: id, Groups: []string{ops}, Tags: []string{"oncall"}},
				"bob":   {Enabled: true, Source: id, Groups: []string{ops}, Tags: []string{}},
				"carol": {Enabled: true, Source: id, Groups: []string{dev}, Tags: []string{}},
			}
			if diff := cmp.Diff(want, directoryUsers(t, st)); diff != "" {
				t.Errorf("synced users (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSyncFailures: a wrong bind password, a server that is down and a TLS server not signed by the trust anchor
// are each reported in status_code, and previously synced users stay as they were.
func TestSyncFailures(t *testing.T) {
	srv := ldaptest.Start(t)
	st := openStore(t)
	src := ldapSource(srv, ProtocolLDAP)
	src.ID = "corp"
	id := createSource(t, st, src)
	d := &Directory{Store: st}
	if err := d.Sync(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	before := directoryUsers(t, st)
	if len(before) != 3 {
		t.Fatalf("synced %d users, want 3", len(before))
	}
	otherCA := ldaptest.Start(t).CAPEM

	tests := []struct {
		name     string
		edit     func(*Source)
		stop     bool
		wantCode string
	}{
		{"bad bind password", func(s *Source) { pw := "wrong"; s.Connection.LDAPBindPassword = &pw }, false, StatusBindFailed},
		{"untrusted certificate", func(s *Source) {
			s.Connection.LDAPProtocol, s.Connection.Port, s.Connection.TLSTrustAnchors = ProtocolLDAPS, srv.TLSPort, otherCA
		}, false, StatusConnectionFailed},
		{"server down", func(*Source) {}, true, StatusConnectionFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := ldapSource(srv, ProtocolLDAP)
			s.ID = id
			tc.edit(s)
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
			if err := st.UpdateSource(context.Background(), s.ToStored(), "test"); err != nil {
				t.Fatal(err)
			}
			if tc.stop {
				srv.Stop()
			}
			err := d.Sync(context.Background(), id)
			var se *SyncError
			if !errors.As(err, &se) || se.Code != tc.wantCode {
				t.Fatalf("sync error = %v, want code %s", err, tc.wantCode)
			}
			if code, text := sourceStatus(t, st, id); code != tc.wantCode || text == "" {
				t.Errorf("status = %s %q, want %s with a reason", code, text, tc.wantCode)
			}
			if diff := cmp.Diff(before, directoryUsers(t, st)); diff != "" {
				t.Errorf("users changed by a failed sync (-before +after):\n%s", diff)
			}
		})
	}
}

// TestSyncRemovedUser: a user deleted upstream is disabled (not deleted) at the next sync, loses its rule grants,
// and is enabled again if it comes back.
func TestSyncRemovedUser(t *testing.T) {
	srv := ldaptest.Start(t)
	st := openStore(t)
	ctx := context.Background()
	src := ldapSource(srv, ProtocolLDAP)
	src.ID = "corp"
	id := createSource(t, st, src)
	role := &model.Role{Name: "operators", Permissions: []string{}}
	if err := st.CreateRole(ctx, role, "test"); err != nil {
		t.Fatal(err)
	}
	if err := st.SetRoleRules(ctx, role.ID, []store.RoleRule{{SourceID: id, GroupDN: "CN=ops, OU=groups,DC=example,DC=org"}}); err != nil {
		t.Fatal(err)
	}
	d := &Directory{Store: st}
	if err := d.Sync(ctx, id); err != nil {
		t.Fatal(err)
	}
	bob, err := st.UserByName(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if !holdsRole(t, st, bob.ID, role.ID) {
		t.Fatal("bob does not hold operators through the ops group rule")
	}
	srv.DeleteUser(t, "bob")
	if err := d.Sync(ctx, id); err != nil {
		t.Fatal(err)
	}
	got := directoryUsers(t, st)
	if got["bob"].Enabled || !got["alice"].Enabled {
		t.Errorf("after removal: bob enabled=%v (want false), alice enabled=%v (want true)", got["bob"].Enabled, got["alice"].Enabled)
	}
	if holdsRole(t, st, bob.ID, role.ID) {
		t.Error("bob still holds operators after leaving the directory")
	}
	if _, text := sourceStatus(t, st, id); text != "Synced 2 users: 0 added, 2 updated, 1 disabled" {
		t.Errorf("status text = %q", text)
	}
	srv.AddUser(t, "bob", "bob-pass-2")
	srv.AddToGroup(t, "bob", ldaptest.OpsGroupDN)
	if err := d.Sync(ctx, id); err != nil {
		t.Fatal(err)
	}
	if !directoryUsers(t, st)["bob"].Enabled || !holdsRole(t, st, bob.ID, role.ID) {
		t.Error("bob did not get access back on returning to the directory")
	}
}

func holdsRole(t *testing.T, st *store.Store, userID, roleID string) bool {
	t.Helper()
	roles, err := st.UserRoles(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(roles, func(r *model.Role) bool { return r.ID == roleID })
}

// TestAuthenticate logs in by bind, with search-then-bind and with ldap_user_dn_pattern, and checks routing.
func TestAuthenticate(t *testing.T) {
	srv := ldaptest.Start(t)
	st := openStore(t)
	ctx := context.Background()
	search := ldapSource(srv, ProtocolStartTLS)
	search.ID, search.UsernamePattern = "search", []string{"a*", "b*"}
	createSource(t, st, search)
	pattern := ldapSource(srv, ProtocolLDAPS)
	pattern.ID, pattern.Name, pattern.UsernamePattern = "pattern", "by-pattern", []string{"c*"}
	pattern.Connection.LDAPUserDNPattern = "uid={0},ou=people"
	createSource(t, st, pattern)
	local := &model.User{Username: "alfred", Enabled: true}
	if err := st.CreateUser(ctx, local, "test"); err != nil {
		t.Fatal(err)
	}
	d := &Directory{Store: st}

	tests := []struct {
		name, user, password string
		wantErr              error
		wantSource           string
	}{
		{"search then bind", "alice", "alice-pass-1", nil, "search"},
		{"dn pattern bind", "carol", "carol-pass-1", nil, "pattern"},
		{"wrong password", "bob", "nope", ErrInvalidCredentials, ""},
		{"empty password", "bob", "", ErrInvalidCredentials, ""},
		{"unknown user in a matched source", "bert", "whatever", ErrInvalidCredentials, ""},
		{"pattern of another source", "carol", "alice-pass-1", ErrInvalidCredentials, ""},
		{"local user is not routed", "alfred", "x", ErrNotDirectoryUser, ""},
		{"no source matches", "zed", "x", ErrNotDirectoryUser, ""},
		{"filter injection", "a*", "alice-pass-1", ErrInvalidCredentials, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := d.Authenticate(ctx, tc.user, tc.password)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			if u.Username != tc.user || u.Source != tc.wantSource || !u.Enabled || u.PasswordHash != "" {
				t.Errorf("user = %+v, want %s from %s, enabled, no local password", u, tc.user, tc.wantSource)
			}
		})
	}
	t.Run("server down", func(t *testing.T) {
		srv.Stop()
		if _, err := d.Authenticate(ctx, "alice", "alice-pass-1"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	})
}
