package configapi

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/gatehouse-dev/gatehouse/internal/connpolicy"
	"github.com/gatehouse-dev/gatehouse/internal/model"
)

// recordingRules is what the committed configuration says about keeping trails and auditing their downloads. It
// covers inactive connection policies too: their old sessions still exist and follow their policy.
type recordingRules struct {
	retention      connpolicy.Retention
	quietDownloads map[string]bool // policy keys with log_audit_trail_downloads false
}

func compileRecordingRules(v *configView, opts *httpOptions) (*recordingRules, error) {
	r := &recordingRules{retention: connpolicy.Retention{PerPolicy: map[string]int{}}, quietDownloads: map[string]bool{}}
	if opts.ChannelDatabaseCleanup.Enabled {
		r.retention.Global = opts.ChannelDatabaseCleanup.Days
	}
	for _, key := range v.keys[kindConnections.name] {
		var c connection
		if err := json.Unmarshal(v.get(kindConnections, key), &c); err != nil {
			return nil, fmt.Errorf("connection %s: %w", key, err)
		}
		if c.ChannelDatabaseCleanup.Enabled {
			r.retention.PerPolicy[key] = c.ChannelDatabaseCleanup.Days
		}
		if !c.LogAuditTrailDownloads {
			r.quietDownloads[key] = true
		}
	}
	return r, nil
}

// auditDownloadSwitches records, beside the commit event, one event per connection policy whose
// log_audit_trail_downloads the commit switched: turning the audit of trail downloads off is itself audited where
// an auditor looks for it, not only inside a commit's change list.
func (s *Service) auditDownloadSwitches(r *http.Request, c *caller, before, after *connpolicy.Policies) {
	keys := map[string]bool{}
	for _, p := range []*connpolicy.Policies{before, after} {
		for _, k := range p.QuietDownloadKeys() {
			keys[k] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		was, now := before.AuditTrailDownloads(k), after.AuditTrailDownloads(k)
		if was == now {
			continue
		}
		e := &model.AuditEvent{Actor: c.Principal.Name, ActorID: c.Principal.ID, Action: "trail-download-auditing",
			ObjectType: "connection", ObjectID: k, SourceAddress: clientIP(r), Outcome: "success",
			Diff: map[string]any{"log_audit_trail_downloads": map[string]bool{"before": was, "after": now}}}
		if err := s.Store.AppendAudit(r.Context(), e); err != nil {
			s.log().Error("writing audit event failed", "action", e.Action, "err", err)
		}
	}
}
