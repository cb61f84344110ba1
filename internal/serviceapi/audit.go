package serviceapi

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// record stores an audit event. A failure to audit is logged loudly but does not undo the change it describes.
func (a *API) record(ctx context.Context, e *model.AuditEvent) {
	if err := a.Store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		a.log().Error("audit event lost", "action", e.Action, "object_type", e.ObjectType, "object_id", e.ObjectID, "err", err)
	}
}

// audit records a management change by the request's principal. before and after are the object's API shapes
// (nil for create or delete); only the fields that changed go in the diff. The shapes never carry secrets, since
// secret fields are write-only in every response type.
func (a *API) audit(r *http.Request, action, objectType, objectID string, before, after any) {
	p := principal(r.Context())
	e := &model.AuditEvent{Action: action, ObjectType: objectType, ObjectID: objectID, SourceAddress: clientIP(r),
		Outcome: "success", Diff: diff(before, after)}
	if p != nil {
		e.Actor, e.ActorID = p.Name, p.ID
	}
	a.record(r.Context(), e)
}

func asMap(v any) map[string]any {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

// diff returns {field: {"old": x, "new": y}} for the fields that differ; bookkeeping fields are left out.
func diff(before, after any) map[string]any {
	b, a := asMap(before), asMap(after)
	out := map[string]any{}
	keys := map[string]bool{}
	for k := range b {
		keys[k] = true
	}
	for k := range a {
		keys[k] = true
	}
	for k := range keys {
		switch k {
		case "updated", "updated_by", "created", "author":
			continue
		}
		if !reflect.DeepEqual(b[k], a[k]) {
			change := map[string]any{}
			if v, ok := b[k]; ok {
				change["old"] = v
			}
			if v, ok := a[k]; ok {
				change["new"] = v
			}
			out[k] = change
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// listAudit is GET /audit/api/v1/events?from=&to=&actor=&object_type=&object_id=&action=
func (a *API) listAudit(w http.ResponseWriter, r *http.Request) error {
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.AuditFilter{Actor: q.Get("actor"), ObjectType: q.Get("object_type"), ObjectID: q.Get("object_id"), Action: q.Get("action")}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return badRequest(p.name, p.name+" must be an RFC 3339 time")
			}
			*p.dst = t
		}
	}
	events, total, err := a.Store.ListAudit(r.Context(), f, opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(events, total))
	return nil
}

// auditRefused records an attempt the API refused that an auditor should see (a secret read by someone else).
func (a *API) auditRefused(r *http.Request, action, objectType, objectID, reason string) {
	p := principal(r.Context())
	e := &model.AuditEvent{Action: action, ObjectType: objectType, ObjectID: objectID, SourceAddress: clientIP(r),
		Outcome: "failure", Diff: map[string]any{"reason": reason}}
	if p != nil {
		e.Actor, e.ActorID = p.Name, p.ID
	}
	a.record(r.Context(), e)
}
