package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/extender"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/storetest"
)

// TestExtenderSessionCheck pins the decision each heartbeat makes about a live session: it goes on only while its
// extender exists, is enabled, keeps its prefix and still holds the credential the session connected with (and,
// for a certificate, while it has not expired).
func TestExtenderSessionCheck(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	hub := newExtenderHub(st, nil, nil)
	tokExt := &model.Extender{Name: "t", RoutingPrefix: "site", Enabled: true}
	if err := st.CreateExtender(ctx, tokExt, "gx_one", "test"); err != nil {
		t.Fatal(err)
	}
	soon := time.Now().Add(time.Hour)
	certExt := &model.Extender{Name: "c", RoutingPrefix: "site", Enabled: true, Authentication: model.ExtenderAuthCertificate,
		Certificate: &model.ExtenderCertificate{Serial: "1", Fingerprint: "fp-1", NotAfter: soon}}
	if err := st.CreateExtender(ctx, certExt, "gx_unseen", "test"); err != nil {
		t.Fatal(err)
	}
	tokID, err := hub.Authenticate(ctx, "gx_one")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hub.Authenticate(ctx, "gx_unseen"); !errors.Is(err, extender.ErrRefused) {
		t.Errorf("the token of a certificate extender: %v, want refused", err)
	}
	certID := extender.Identity{ID: certExt.ID, Prefix: "site", Credential: "cert:fp-1"}
	for _, c := range []struct {
		name    string
		change  func()
		id      *extender.Identity
		refused bool
	}{
		{"token session as connected", func() {}, &tokID, false},
		{"certificate session as connected", func() {}, &certID, false},
		{"token rotated", func() { st.RotateExtenderToken(ctx, tokExt.ID, "gx_two", "test") }, &tokID, true},
		{"prefix changed", func() {
			tokID.Credential = "token:" + st.SecretIndex(store.IndexExtenderToken, "gx_two")
			tokExt.RoutingPrefix = "moved"
			st.UpdateExtender(ctx, tokExt, "test")
		}, &tokID, true},
		{"certificate expired", func() {
			st.ReplaceExtenderCertificate(ctx, certExt.ID, model.ExtenderCertificate{Serial: "1", Fingerprint: "fp-1", NotAfter: time.Now().Add(-time.Second)}, "test")
		}, &certID, true},
		{"certificate reissued", func() {
			st.ReplaceExtenderCertificate(ctx, certExt.ID, model.ExtenderCertificate{Serial: "2", Fingerprint: "fp-2", NotAfter: soon}, "test")
		}, &certID, true},
		{"new certificate's session", func() { certID.Credential = "cert:fp-2" }, &certID, false},
		{"disabled", func() { certExt.Enabled = false; st.UpdateExtender(ctx, certExt, "test") }, &certID, true},
		{"deleted", func() { st.DeleteExtender(ctx, certExt.ID) }, &certID, true},
	} {
		c.change()
		err := hub.Check(ctx, *c.id)
		if errors.Is(err, extender.ErrRefused) != c.refused || err != nil && !errors.Is(err, extender.ErrRefused) {
			t.Errorf("%s: Check = %v, want refused=%v", c.name, err, c.refused)
		}
	}
}
