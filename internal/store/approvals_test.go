package store_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/google/go-cmp/cmp"
)

func TestApprovalRequests(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
		rules := []approval.Rule{{Authorizer: "approvers", Permission: approval.PermAuthorize, RequireDifferentIP: true}}
		r := approval.Request{SessionID: "s1", PolicyKey: "p1", PolicyName: "four-eyes", RequesterID: "u1", Requester: "alice",
			ClientAddress: "127.0.0.2:5000", TargetID: "t1", Target: "orders", RequestLine: "GET https://orders.test/v1",
			Node: "n1", State: approval.StatePending, Rules: rules, Created: t0, Expires: t0.Add(time.Hour)}
		if err := e.S.CreateApproval(ctx, &r); err != nil {
			t.Fatal(err)
		}
		if r.ID == "" {
			t.Fatal("no id assigned")
		}
		dup := r
		dup.ID = ""
		if err := e.S.CreateApproval(ctx, &dup); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second request of one session: %v, want ErrConflict", err)
		}
		got, err := e.S.Approval(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(r, got); d != "" {
			t.Fatalf("stored request differs (-want +got):\n%s", d)
		}
		if bySession, err := e.S.ApprovalOfSession(ctx, "s1"); err != nil || bySession.ID != r.ID {
			t.Fatalf("ApprovalOfSession = %v, %v", bySession.ID, err)
		}
		if _, err := e.S.Approval(ctx, "nope"); !errors.Is(err, store.ErrNotExist) {
			t.Fatalf("missing request: %v", err)
		}

		// Two deciders at once: exactly one wins, the other is told the request is no longer pending.
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, st := range []approval.State{approval.StateApproved, approval.StateRejected} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := r
				d.State, d.Decider, d.DeciderID, d.Comment, d.Decided = st, "bob", "u2", "c", t0.Add(time.Minute)
				errs[i] = e.S.DecideApproval(ctx, d)
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, store.ErrApprovalDecided):
				t.Fatalf("losing decision: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d decisions won, want exactly 1 (%v)", won, errs)
		}
		got, _ = e.S.Approval(ctx, r.ID)
		if !got.State.Final() || got.Decider != "bob" || !got.Decided.Equal(t0.Add(time.Minute)) {
			t.Fatalf("decision not stored: %+v", got)
		}
		if err := e.S.DecideApproval(ctx, r); err == nil {
			t.Fatal("a pending state was accepted as a decision")
		}

		r2 := r
		r2.ID, r2.SessionID, r2.Created = "", "s2", t0.Add(time.Second)
		if err := e.S.CreateApproval(ctx, &r2); err != nil {
			t.Fatal(err)
		}
		list, total, err := e.S.ListApprovals(ctx, approval.StatePending, 0, 0)
		if err != nil || total != 1 || len(list) != 1 || list[0].ID != r2.ID {
			t.Fatalf("pending list = %v (total %d), %v", list, total, err)
		}
		all, total, err := e.S.ListApprovals(ctx, "", 0, 0)
		if err != nil || total != 2 || all[0].ID != r2.ID {
			t.Fatalf("full list newest first = %v (total %d), %v", all, total, err)
		}
	})
}

func TestNotificationSettingsSealPassword(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		if _, _, err := e.S.NotificationSettings(ctx); !errors.Is(err, store.ErrNotExist) {
			t.Fatalf("before any save: %v", err)
		}
		pw := "smtp-Secret-4711"
		if err := e.S.SaveNotificationSettings(ctx, `{"smtp":{"host":"127.0.0.1"}}`, &pw, "admin"); err != nil {
			t.Fatal(err)
		}
		if dump := e.dumpTable(t, "notification_settings"); strings.Contains(dump, pw) {
			t.Fatalf("SMTP password stored in clear: %s", dump)
		}
		// Saving without a password keeps it; an empty one clears it.
		if err := e.S.SaveNotificationSettings(ctx, `{"smtp":{"host":"127.0.0.2"}}`, nil, "admin"); err != nil {
			t.Fatal(err)
		}
		body, got, err := e.S.NotificationSettings(ctx)
		if err != nil || got != pw || !strings.Contains(body, "127.0.0.2") {
			t.Fatalf("after save without password: %q %q %v", body, got, err)
		}
		empty := ""
		if err := e.S.SaveNotificationSettings(ctx, body, &empty, "admin"); err != nil {
			t.Fatal(err)
		}
		if _, got, _ := e.S.NotificationSettings(ctx); got != "" {
			t.Fatalf("password not cleared: %q", got)
		}
	})
}

func TestWebhookSecretsSealed(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		if got, err := e.S.WebhookSecrets(ctx); err != nil || got != nil {
			t.Fatalf("before any save: %q %v", got, err)
		}
		secret := "hook-Secret-0815-abcdef"
		if err := e.S.SaveNotificationSettingsSecrets(ctx, `{"webhooks":[{"url":"https://a"},{"url":"https://b"}]}`, nil, []string{"", secret}, "admin"); err != nil {
			t.Fatal(err)
		}
		if dump := e.dumpTable(t, "notification_settings"); strings.Contains(dump, secret) {
			t.Fatalf("webhook secret stored in clear: %s", dump)
		}
		// Saving settings alone keeps the secrets.
		if err := e.S.SaveNotificationSettings(ctx, `{"webhooks":[{"url":"https://a"},{"url":"https://b"}]}`, nil, "admin"); err != nil {
			t.Fatal(err)
		}
		if got, err := e.S.WebhookSecrets(ctx); err != nil || len(got) != 2 || got[0] != "" || got[1] != secret {
			t.Fatalf("secrets %q %v", got, err)
		}
	})
}
