package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/google/go-cmp/cmp"
)

// TestExtenderOwners pins which nodes count as holding a prefix: another node, with a fresh registration and a
// fresh session entry, of an enabled extender of that prefix.
func TestExtenderOwners(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx, now := context.Background(), time.Now()
		ext := func(name, prefix string, enabled bool) string {
			x := &model.Extender{Name: name, RoutingPrefix: prefix, Enabled: enabled}
			if err := e.S.CreateExtender(ctx, x, "gx_"+name, "test"); err != nil {
				t.Fatal(err)
			}
			return x.ID
		}
		a, off, other := ext("a", "site", true), ext("off", "site", false), ext("other", "elsewhere", true)
		for _, n := range []struct {
			id  string
			age time.Duration
		}{{"self", 0}, {"b", 0}, {"c", 0}, {"dead", time.Hour}, {"d", 0}} {
			if _, err := e.S.Heartbeat(ctx, store.Node{ID: n.id, APIAddress: n.id + ":8443", Started: now, Heartbeat: now.Add(-n.age)}); err != nil {
				t.Fatal(err)
			}
		}
		for _, l := range []struct {
			key, ext, node string
			age            time.Duration
		}{
			{"l1", a, "self", 0},        // this node's own
			{"l2", a, "b", 0},           // counts
			{"l3", a, "c", time.Hour},   // stale session entry
			{"l4", a, "dead", 0},        // node stopped answering
			{"l5", off, "d", 0},         // extender disabled
			{"l6", other, "d", 0},       // another prefix
			{"l7", a, "b", time.Second}, // a second session on b: one owner
		} {
			if err := e.S.PutExtenderLink(ctx, store.ExtenderLink{Key: l.key, ExtenderID: l.ext, NodeID: l.node,
				ConnectedSince: now, Heartbeat: now.Add(-l.age)}); err != nil {
				t.Fatal(err)
			}
		}
		owners := func() []string {
			t.Helper()
			nodes, err := e.S.ExtenderOwners(ctx, "site", "self", now.Add(-time.Minute), now.Add(-time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, n := range nodes {
				ids = append(ids, n.ID+"@"+n.APIAddress)
			}
			return ids
		}
		if got := owners(); !cmp.Equal(got, []string{"b@b:8443"}) {
			t.Fatalf("owners %v, want b only", got)
		}
		for _, c := range []struct {
			ext, self string
			want      bool
		}{{a, "self", true}, {a, "b", true}, {off, "d", false}, {other, "self", true}, {"none", "self", false}} {
			got, err := e.S.ExtenderLinkedElsewhere(ctx, c.ext, c.self, now.Add(-time.Minute))
			if err != nil || got != c.want {
				t.Errorf("ExtenderLinkedElsewhere(%s, %s) = %v %v, want %v", c.ext, c.self, got, err, c.want)
			}
		}
		// A heartbeat refreshes the entry, keeping when it connected.
		if err := e.S.PutExtenderLink(ctx, store.ExtenderLink{Key: "l3", ExtenderID: a, NodeID: "c", ConnectedSince: now.Add(time.Hour), Heartbeat: now}); err != nil {
			t.Fatal(err)
		}
		if got := owners(); !cmp.Equal(got, []string{"b@b:8443", "c@c:8443"}) {
			t.Fatalf("after c's heartbeat: %v", got)
		}
		if err := e.S.DeleteExtenderLink(ctx, "l3"); err != nil {
			t.Fatal(err)
		}
		if err := e.S.DeleteNodeExtenderLinks(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		if got := owners(); len(got) != 0 {
			t.Fatalf("after b's and c's entries went: %v", got)
		}
		if err := e.S.DeleteStaleExtenderLinks(ctx, now.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		var left int
		if err := e.Raw.QueryRow(`SELECT COUNT(*) FROM extender_links`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left != 4 { // l1, l4, l5, l6: all fresh
			t.Fatalf("%d entries left after deleting stale ones, want 4", left)
		}
	})
}

// TestExtenderCertificates: a certificate extender is found by its current certificate only, a reissue replaces
// it, and the admission state says which credential holds now.
func TestExtenderCertificates(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		notAfter := time.Now().Add(time.Hour).Truncate(time.Microsecond)
		x := &model.Extender{Name: "c", RoutingPrefix: "site", Enabled: true, Authentication: model.ExtenderAuthCertificate,
			Certificate: &model.ExtenderCertificate{Serial: "1a", Fingerprint: "fp-1", NotAfter: notAfter}}
		if err := e.S.CreateExtender(ctx, x, "gx_unseen", "test"); err != nil {
			t.Fatal(err)
		}
		tok := &model.Extender{Name: "t", RoutingPrefix: "site", Enabled: true}
		if err := e.S.CreateExtender(ctx, tok, "gx_t", "test"); err != nil {
			t.Fatal(err)
		}
		got, err := e.S.ExtenderByCertificate(ctx, "fp-1")
		if err != nil || got.ID != x.ID || got.Certificate == nil || !got.Certificate.NotAfter.Equal(notAfter) || got.Authentication != "certificate" {
			t.Fatalf("by certificate: %+v %v", got, err)
		}
		if err := e.S.ReplaceExtenderCertificate(ctx, x.ID, model.ExtenderCertificate{Serial: "2b", Fingerprint: "fp-2", NotAfter: notAfter}, "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.S.ExtenderByCertificate(ctx, "fp-1"); !errors.Is(err, store.ErrNotExist) {
			t.Fatalf("the replaced certificate: %v, want ErrNotExist", err)
		}
		if err := e.S.ReplaceExtenderCertificate(ctx, tok.ID, model.ExtenderCertificate{Fingerprint: "fp-3"}, "test"); !errors.Is(err, store.ErrNotExist) {
			t.Fatalf("a certificate for a token extender: %v, want refused", err)
		}
		adm, err := e.S.ExtenderAdmission(ctx, x.ID)
		if err != nil || adm.CertFingerprint != "fp-2" || !adm.CertNotAfter.Equal(notAfter) || !adm.Enabled || adm.Authentication != "certificate" {
			t.Fatalf("admission: %+v %v", adm, err)
		}
		if ta, _ := e.S.ExtenderAdmission(ctx, tok.ID); ta.TokenIndex != e.S.SecretIndex(store.IndexExtenderToken, "gx_t") || ta.Authentication != "token" {
			t.Fatalf("token admission: %+v", ta)
		}
		if _, err := e.S.ExtenderAdmission(ctx, "gone"); !errors.Is(err, store.ErrNotExist) {
			t.Fatalf("admission of a missing extender: %v", err)
		}
	})
}
