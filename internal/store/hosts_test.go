package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func hostNames(t *testing.T, s *store.Store, q store.HostQuery, opts store.ListOptions) []string {
	t.Helper()
	hosts, total, err := s.ListHosts(context.Background(), q, opts)
	if err != nil {
		t.Fatalf("ListHosts(%+v): %v", q, err)
	}
	names := []string{}
	for _, h := range hosts {
		names = append(names, h.CommonName)
	}
	if total < len(names) {
		t.Errorf("ListHosts(%+v): total %d below the %d items returned", q, total, len(names))
	}
	return names
}

func TestHostCRUD(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		h := &store.Host{CommonName: "Web-1", Addresses: []string{"10.0.0.1"}, Tags: []string{"prod", "web"},
			Services: []store.HostService{{Service: "SSH", Address: "10.0.0.1", Port: 22, Source: "local"}}, Zone: "eu"}
		if err := e.S.CreateHost(ctx, h, "alice"); err != nil {
			t.Fatal(err)
		}
		if h.ID == "" || h.Source != "local" || h.Author != "alice" || h.Created.IsZero() {
			t.Errorf("created host %+v: want id, source local, author and times", h)
		}
		got, err := e.S.Host(ctx, h.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(h, got); d != "" {
			t.Errorf("read back (-wrote +read):\n%s", d)
		}

		if err := e.S.CreateHost(ctx, &store.Host{CommonName: "WEB-1"}, "alice"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("a common name differing only in case: %v, want ErrConflict", err)
		}

		got.Tags, got.Comment = []string{"dev"}, "moved"
		if err := e.S.UpdateHost(ctx, got, "bob"); err != nil {
			t.Fatal(err)
		}
		again, err := e.S.Host(ctx, h.ID)
		if err != nil {
			t.Fatal(err)
		}
		if again.Comment != "moved" || again.UpdatedBy != "bob" || again.Author != "alice" || !again.Created.Equal(h.Created) {
			t.Errorf("after update: %+v", again)
		}
		// The tag index follows the update: the old tags no longer find the host.
		if got := hostNames(t, e.S, store.HostQuery{Tags: []string{"prod"}}, store.ListOptions{}); len(got) != 0 {
			t.Errorf("old tag still finds %v", got)
		}
		if got := hostNames(t, e.S, store.HostQuery{Tags: []string{"dev"}}, store.ListOptions{}); !cmp.Equal(got, []string{"Web-1"}) {
			t.Errorf("new tag finds %v", got)
		}

		missing := *again
		missing.ID = "no-such-host"
		if err := e.S.UpdateHost(ctx, &missing, "bob"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("update of a missing host: %v, want ErrNotExist", err)
		}
		if err := e.S.DeleteHost(ctx, h.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.S.Host(ctx, h.ID); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("get after delete: %v, want ErrNotExist", err)
		}
		if err := e.S.DeleteHost(ctx, h.ID); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("second delete: %v, want ErrNotExist", err)
		}
		var tags int
		if err := e.Raw.QueryRow(`SELECT COUNT(*) FROM host_tags`).Scan(&tags); err != nil || tags != 0 {
			t.Errorf("host_tags rows after delete: %d (%v), want 0", tags, err)
		}
	})
}

func TestListHosts(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		for _, h := range []*store.Host{
			{CommonName: "b-host", Addresses: []string{"10.0.0.2"}, Tags: []string{"x"}, Source: "ldap"},
			{CommonName: "A-host", Addresses: []string{"10.0.0.1"}, Tags: []string{"x", "y"}, Comment: "50% off"},
			{CommonName: "c_host", Services: []store.HostService{{Service: "SSH", Address: "c.example.com", Port: 22, Source: "local"}}},
		} {
			if err := e.S.CreateHost(ctx, h, "t"); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			name string
			q    store.HostQuery
			opts store.ListOptions
			want []string
		}{
			{"all, names without case", store.HostQuery{}, store.ListOptions{}, []string{"A-host", "b-host", "c_host"}},
			{"descending", store.HostQuery{}, store.ListOptions{SortDir: "desc"}, []string{"c_host", "b-host", "A-host"}},
			{"page", store.HostQuery{}, store.ListOptions{Offset: 1, Limit: 1}, []string{"b-host"}},
			{"keywords all match", store.HostQuery{Keywords: []string{"HOST", "10.0.0"}}, store.ListOptions{}, []string{"A-host", "b-host"}},
			{"keyword in a service address", store.HostQuery{Keywords: []string{"c.example"}}, store.ListOptions{}, []string{"c_host"}},
			{"percent is literal", store.HostQuery{Keywords: []string{"%"}}, store.ListOptions{}, []string{"A-host"}},
			{"underscore is literal", store.HostQuery{Keywords: []string{"_"}}, store.ListOptions{}, []string{"c_host"}},
			{"tags", store.HostQuery{Tags: []string{"x", "y"}}, store.ListOptions{}, []string{"A-host"}},
			{"source", store.HostQuery{Source: "local"}, store.ListOptions{}, []string{"A-host", "c_host"}},
			{"filter with keywords", store.HostQuery{Keywords: []string{"host"}}, store.ListOptions{Filter: "off"}, []string{"A-host"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if d := cmp.Diff(tt.want, hostNames(t, e.S, tt.q, tt.opts), cmpopts.EquateEmpty()); d != "" {
					t.Errorf("names (-want +got):\n%s", d)
				}
			})
		}
		if _, _, err := e.S.ListHosts(ctx, store.HostQuery{}, store.ListOptions{SortKey: "body"}); !errors.Is(err, store.ErrBadQuery) {
			t.Errorf("sort by an unlisted column: %v, want ErrBadQuery", err)
		}
	})
}
