package serviceapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/recording"
)

// The PrivX SDK downloads a channel's trail log in two steps (connectionmanager.CreateSessionForTrailLogDownload
// and DownloadTrailLog):
//  1. POST .../connections/{id}/channel/{channel}/log answers {"session_id"}, a download handle;
//  2. GET .../connections/{id}/channel/{channel}/log/{session_id}?format= answers the log as a file.
// A channel of a Gatehouse connection is one recorded exchange, named by its sequence number (1, 2, ...), as the
// trail index's channel_id names it. The handle is sealed (not stored), so any node of a cluster opens it; it is
// bound to the connection, the channel and the principal who asked for it, and expires after trailLogTTL. The
// download itself still needs the caller's token and connections-trails, so a handle alone is worth nothing and a
// principal who lost the permission in between gets nothing.

const (
	sealTrailLog = "gatehouse trail log download v1:"
	trailLogTTL  = 5 * time.Minute
)

// trailLogHandle is what a download handle seals.
type trailLogHandle struct {
	Connection string `json:"c"`
	Channel    int64  `json:"ch"`
	Kind       string `json:"k"`
	Principal  string `json:"p"`
	Expires    int64  `json:"exp"`
}

// admits reports whether the handle is for this connection's channel n, held by p, and unexpired at now.
func (h trailLogHandle) admits(id string, n int64, p *Principal, now time.Time) bool {
	return h.Connection == id && h.Channel == n && h.Kind == p.Kind && h.Principal == p.ID && now.Unix() <= h.Expires
}

// downloadSession is the answer of step 1, PrivX's DownloadSessionID.
type downloadSession struct {
	SessionID string `json:"session_id"`
}

var errNoDownload = &Error{Status: http.StatusNotFound, Code: "NOT_FOUND",
	Message: "download session not found or expired; ask for a new one with POST .../channel/{channel}/log"}

// channelNumber reads a channel id: an exchange's sequence number.
func channelNumber(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, badRequest("channel", "a channel of a Gatehouse connection is one recorded exchange, named by its sequence number (1, 2, ...)")
	}
	return n, nil
}

// channelExchange reads the exchange a channel names from the connection's trail.
func (a *API) channelExchange(r *http.Request, id string, n int64) (recording.Page, error) {
	page, err := a.Trails.Read(r.Context(), id, int(n-1), 1)
	if errors.Is(err, recording.ErrNotExist) {
		return page, &Error{Status: http.StatusNotFound, Code: "NO_TRAIL", Message: "no trail is stored for this connection"}
	} else if err != nil {
		return page, err
	}
	if len(page.Items) != 1 || page.Items[0].Seq != n {
		return page, &Error{Status: http.StatusNotFound, Code: "NOT_FOUND", Property: "channel",
			Message: fmt.Sprintf("the trail has no exchange %d (it holds %d)", n, page.Total)}
	}
	return page, nil
}

// createTrailLogSession is step 1: it checks that the channel exists and answers a handle for it.
func (a *API) createTrailLogSession(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	n, err := channelNumber(r.PathValue("channel"))
	if err != nil {
		return err
	}
	if _, err := a.recordedSession(r, id); err != nil {
		return a.forwarded(w, r, err)
	}
	if _, err := a.channelExchange(r, id, n); err != nil {
		return err
	}
	p := principal(r.Context())
	handle, err := a.sealOIDC(sealTrailLog, trailLogHandle{Connection: id, Channel: n, Kind: p.Kind, Principal: p.ID,
		Expires: a.now().Add(trailLogTTL).Unix()})
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, downloadSession{SessionID: handle})
	return nil
}

// downloadTrailLog is step 2: the exchange as recorded (format json, the default) or as a HAR file (format har),
// as an attachment. Each download is audited like any other trail read.
func (a *API) downloadTrailLog(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	n, err := channelNumber(r.PathValue("channel"))
	if err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	switch format {
	case "", "json", "har":
	default:
		return badRequest("format", "format must be json or har")
	}
	var h trailLogHandle
	p := principal(r.Context())
	if err := a.openOIDC(sealTrailLog, r.PathValue("session_id"), &h); err != nil || !h.admits(id, n, p, a.now()) {
		return errNoDownload
	}
	sess, err := a.recordedSession(r, id)
	if err != nil {
		return a.forwarded(w, r, err)
	}
	page, err := a.channelExchange(r, id, n)
	if err != nil {
		return err
	}
	a.auditDownload(r, sess, "download-trail-log", map[string]any{"channel": n, "format": format})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if format == "har" {
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="gatehouse-%s-%d.har"`, id, n))
		return recording.WriteHAR(w, page.Meta, page.Items)
	}
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="gatehouse-%s-%d.json"`, id, n))
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(page.Items[0])
}
