package configapi

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/connpolicy"
	"github.com/google/go-cmp/cmp"
)

func TestRecordingRules(t *testing.T) {
	withCleanup := func(name string, active bool, days int, downloads bool) map[string]any {
		b := connBody(name, []string{"10.0.0.0/8"}, []string{"*"}, nil)
		b["active"] = active
		b["channel_database_cleanup"] = map[string]any{"enabled": days > 0, "days": days}
		b["log_audit_trail_downloads"] = downloads
		return b
	}
	p := policiesFrom(t, time.Now,
		obj(kindConnections, "short", withCleanup("short", true, 7, true)),
		// An inactive policy admits no one now, but its old sessions still follow its rules.
		obj(kindConnections, "retired", withCleanup("retired", false, 90, false)),
		obj(kindConnections, "forever", withCleanup("forever", true, 0, true)),
		obj(kindOptions, singletonKey, map[string]any{"service": map[string]any{"enabled": true},
			"channel_database_cleanup": map[string]any{"enabled": true, "days": 30}}),
	)
	want := connpolicy.Retention{Global: 30, PerPolicy: map[string]int{"short": 7, "retired": 90}}
	if diff := cmp.Diff(want, p.Retention()); diff != "" {
		t.Errorf("retention (-want +got):\n%s", diff)
	}
	for key, audited := range map[string]bool{"short": true, "retired": false, "forever": true, "-1": true, "": true, "gone": true} {
		if got := p.AuditTrailDownloads(key); got != audited {
			t.Errorf("AuditTrailDownloads(%q) = %v, want %v", key, got, audited)
		}
	}
	if got := policiesFrom(t, time.Now).Retention(); got.Global != 0 || len(got.PerPolicy) != 0 {
		t.Errorf("defaults keep everything forever, got %+v", got)
	}
}

func TestCleanupDaysBounded(t *testing.T) {
	for _, tc := range []struct {
		days int
		ok   bool
	}{{1, true}, {36500, true}, {36501, false}, {1 << 40, false}, {0, false}, {-1, false}} {
		body := mustJSON(map[string]any{"service": map[string]any{"enabled": true},
			"channel_database_cleanup": map[string]any{"enabled": true, "days": tc.days}})
		_, err := decodeBody(kindOptions, body)
		var e *Error
		switch {
		case tc.ok && err != nil:
			t.Errorf("days %d refused: %v", tc.days, err)
		case !tc.ok && (!errors.As(err, &e) || e.Field != "channel_database_cleanup.days"):
			t.Errorf("days %d: %v, want a refusal naming channel_database_cleanup.days", tc.days, err)
		}
	}
}
