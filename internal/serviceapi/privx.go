package serviceapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// This file holds what the official PrivX SDK needs beyond Gatehouse's own shapes: the fields of PrivX features
// Gatehouse lacks (accepted at their zero value, refused otherwise), the disabled reasons, the per-service status
// routes and the monitor-service view of the audit log.

// notSupported is the answer to a field of a PrivX feature Gatehouse does not have, set to a non-zero value.
func notSupported(property, why string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "NOT_SUPPORTED", Property: property,
		Message: property + " is not supported by Gatehouse: " + why}
}

// refuseUnsupported checks an input's fields of type json.RawMessage, one per PrivX field whose feature Gatehouse
// lacks (embedded structs included): any non-zero value is refused with NOT_SUPPORTED, the tag "why" giving the
// reason. Fields tagged readonly:"true" only describe an object in an answer and are ignored, like created.
func refuseUnsupported(v any) error {
	return refuseIn(reflect.Indirect(reflect.ValueOf(v)))
}

var rawMessageType = reflect.TypeOf(json.RawMessage(nil))

func refuseIn(rv reflect.Value) error {
	rt := rv.Type()
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			if err := refuseIn(rv.Field(i)); err != nil {
				return err
			}
			continue
		}
		if !f.IsExported() || f.Type != rawMessageType || f.Tag.Get("readonly") == "true" {
			continue
		}
		raw := json.RawMessage(rv.Field(i).Bytes())
		if zeroJSON(raw) {
			continue
		}
		if z := f.Tag.Get("zero"); z != "" && string(bytes.TrimSpace(raw)) == z {
			continue // a value PrivX spells out for "off", such as NOT_DISABLED
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		why := f.Tag.Get("why")
		if why == "" {
			why = "only its zero value is accepted"
		}
		return notSupported(name, why)
	}
	return nil
}

// withPrefix puts prefix before the property an *Error names (a field inside a list item).
func withPrefix(err error, prefix string) error {
	if e, ok := err.(*Error); ok {
		c := *e
		c.Message = prefix + c.Message
		c.Property = prefix + c.Property
		return &c
	}
	return err
}

// zeroJSON reports whether raw is absent or the zero value of its type: null, "", false, 0, [] or an object whose
// members are all zero (the SDK sends whole structs, so a nested zero struct is a zero).
func zeroJSON(raw json.RawMessage) bool {
	if len(bytes.TrimSpace(raw)) == 0 {
		return true
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return false
	}
	return zeroValue(v)
}

func zeroValue(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case bool:
		return !x
	case float64:
		return x == 0
	case []any:
		return len(x) == 0
	case map[string]any:
		for _, m := range x {
			if !zeroValue(m) {
				return false
			}
		}
		return true
	}
	return false
}

// Disabled reasons as PrivX spells them.
const (
	notDisabled = "NOT_DISABLED"
	byAdmin     = "BY_ADMIN"
	byLicense   = "BY_LICENSE"
)

// disabledFlag reads PrivX's disabled reason ("", NOT_DISABLED, BY_ADMIN) or Gatehouse's older boolean.
type disabledFlag struct {
	set   bool
	value bool
}

func (d *disabledFlag) UnmarshalJSON(b []byte) error {
	var flag bool
	if err := json.Unmarshal(b, &flag); err == nil {
		*d = disabledFlag{set: true, value: flag}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return badRequest("disabled", "disabled must be NOT_DISABLED, BY_ADMIN or a boolean")
	}
	switch s {
	case "":
		// The SDK sends "" for "leave as it is".
	case notDisabled:
		*d = disabledFlag{set: true}
	case byAdmin:
		*d = disabledFlag{set: true, value: true}
	case byLicense:
		return notSupported("disabled", "Gatehouse has no licences, so nothing is disabled BY_LICENSE")
	default:
		return badRequest("disabled", "disabled must be NOT_DISABLED, BY_ADMIN or a boolean")
	}
	return nil
}

func disabledReason(disabled bool) string {
	if disabled {
		return byAdmin
	}
	return notDisabled
}

// serviceStatus answers GET /<service>/api/v1/status in the shape the SDK's ServiceStatus decodes.
func (a *API) serviceStatus(service string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		out := map[string]any{"variant": "gatehouse", "version": Version, "api_version": "v1", "app_id": service,
			"status": "ok", "status_message": "OK", "server-mode": "RUN"}
		if err := a.Store.Ping(r.Context()); err != nil {
			out["status"] = "degraded"
			out["status_message"] = "database unreachable"
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
}

// monitorEvent is an audit event as the monitor service's AuditEvent shows it; message carries Gatehouse's fields.
type monitorEvent struct {
	ServiceID   string            `json:"service_id"`
	ServiceName string            `json:"service_name"`
	EventID     string            `json:"event_id"`
	EventName   string            `json:"event_name"`
	Created     string            `json:"created"`
	Message     map[string]string `json:"message"`
}

// monitorAuditSearch is the body of POST /monitor-service/api/v1/auditevents/search.
type monitorAuditSearch struct {
	Keywords      string          `json:"keywords"`
	UserID        string          `json:"user_id"`
	StartTime     string          `json:"start_time"`
	EndTime       string          `json:"end_time"`
	ConnectionID  json.RawMessage `json:"connection_id" why:"audit events are not indexed by connection"`
	HostID        json.RawMessage `json:"host_id" why:"audit events are not indexed by host"`
	SourceID      json.RawMessage `json:"source_id" why:"audit events are not indexed by source"`
	SessionID     json.RawMessage `json:"session_id" why:"audit events are not indexed by login session"`
	AccessGroupID json.RawMessage `json:"access_group_id" why:"Gatehouse has no access groups"`
}

func (a *API) monitorAuditEvents(w http.ResponseWriter, r *http.Request) error {
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	if opts.SortKey == "created" { // the SDK sorts by PrivX's name for the event time
		opts.SortKey = "time"
	}
	var f store.AuditFilter
	if r.Method == http.MethodPost {
		var in monitorAuditSearch
		if err := decode(r, &in); err != nil {
			return err
		}
		if err := refuseUnsupported(&in); err != nil {
			return err
		}
		f.ActorID = in.UserID
		for _, p := range []struct {
			name, v string
			dst     *time.Time
		}{{"start_time", in.StartTime, &f.From}, {"end_time", in.EndTime, &f.To}} {
			if p.v == "" {
				continue
			}
			t, err := time.Parse(time.RFC3339, p.v)
			if err != nil {
				return badRequest(p.name, p.name+" must be an RFC 3339 time")
			}
			*p.dst = t
		}
		f.Keyword = in.Keywords
	}
	if f.Keyword, err = filterAsKeywords(opts.Filter, f.Keyword); err != nil {
		return err
	}
	events, total, err := a.Store.ListAudit(r.Context(), f, opts)
	if err != nil {
		return err
	}
	out := make([]monitorEvent, 0, len(events))
	for _, e := range events {
		out = append(out, monitorEvent{ServiceID: "gatehouse", ServiceName: "gatehouse", EventID: strconv.FormatInt(e.ID, 10),
			EventName: e.ObjectType + "-" + e.Action, Created: e.Time.UTC().Format(time.RFC3339),
			Message: map[string]string{"actor": e.Actor, "actor_id": e.ActorID, "action": e.Action, "object_type": e.ObjectType,
				"object_id": e.ObjectID, "source_address": e.SourceAddress, "outcome": e.Outcome}})
	}
	writeJSON(w, http.StatusOK, newList(out, total))
	return nil
}

// noTags answers a tag list of objects that have no tags in Gatehouse (local users, connections): always empty.
func (a *API) noTags(w http.ResponseWriter, r *http.Request) error {
	if _, err := listOptions(r); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList([]string{}, 0))
	return nil
}

// filterAsKeywords gives a list's filter query parameter to a store whose lists narrow by keywords only (sessions,
// audit events), so that filter is never ignored; a filter beside different keywords is refused, not guessed at.
func filterAsKeywords(filter, keywords string) (string, error) {
	switch {
	case filter == "" || filter == keywords:
		return keywords, nil
	case keywords == "":
		return filter, nil
	}
	return "", badRequest("filter", "give keywords or the filter parameter, not both")
}
