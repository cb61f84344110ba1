package recording

import (
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/wsframe"
)

// Record kinds as written in the "kind" member of a trail line.
const (
	KindOpen        = "open"
	KindExchange    = "exchange"
	KindClose       = "close"
	KindInterrupted = "interrupted"
)

// SessionMeta describes an API session. It is the body of the "open" record.
type SessionMeta struct {
	SessionID  string    `json:"session_id"`
	User       string    `json:"user"`
	Target     string    `json:"target"`
	Credential string    `json:"credential,omitempty"` // name or id of the injected target credential, never its value
	ClientAddr string    `json:"client_addr,omitempty"`
	Started    time.Time `json:"started"`
	// BodyLimit, when not zero, replaces the store's BodyLimit for this session (a connection policy can set it);
	// negative records no body.
	BodyLimit int `json:"body_limit,omitempty"`
}

// Exchange is one request forwarded (or refused) by the proxy and the
// response it got. The Writer assigns Seq; everything else is filled in by
// the proxy before Append.
type Exchange struct {
	// Seq numbers the exchanges of one session from 1 in trail order.
	Seq int64 `json:"seq"`
	// ID is the request id the proxy used in logs and audit events.
	ID         string    `json:"id,omitempty"`
	Started    time.Time `json:"started"`
	DurationMS float64   `json:"duration_ms"`
	// WaitMS is the part of DurationMS until the target's response header
	// arrived, when known (0 in older trails); the HAR export splits the
	// duration with it into wait and receive.
	WaitMS float64 `json:"wait_ms,omitempty"`

	Method string `json:"method"`
	// URL is the URL as the target saw it: scheme://host/path?query.
	URL    string `json:"url"`
	Proto  string `json:"proto,omitempty"`
	Status int    `json:"status,omitempty"`

	RequestHeaders  http.Header `json:"request_headers,omitempty"`
	ResponseHeaders http.Header `json:"response_headers,omitempty"`

	// RequestBody and ResponseBody hold at most the store's body limit of
	// redacted bytes; RequestBytes and ResponseBytes count the whole bodies.
	RequestBody           []byte `json:"request_body,omitempty"`
	ResponseBody          []byte `json:"response_body,omitempty"`
	RequestBodyTruncated  bool   `json:"request_body_truncated,omitempty"`
	ResponseBodyTruncated bool   `json:"response_body_truncated,omitempty"`
	RequestBytes          int64  `json:"request_bytes"`
	ResponseBytes         int64  `json:"response_bytes"`

	// Error says why no response was received, if so.
	Error string `json:"error,omitempty"`
	// Decision is the policy outcome, e.g. "allowed" or "denied: no endpoint".
	Decision string `json:"decision,omitempty"`

	// WebSocket marks an upgraded connection; the counters cover its frames.
	WebSocket        bool  `json:"websocket,omitempty"`
	WSFramesToTarget int64 `json:"ws_frames_to_target,omitempty"`
	WSFramesToClient int64 `json:"ws_frames_to_client,omitempty"`
	WSBytesToTarget  int64 `json:"ws_bytes_to_target,omitempty"`
	WSBytesToClient  int64 `json:"ws_bytes_to_client,omitempty"`
	// WSMessages are the messages of an upgraded connection in the order
	// they were seen; WSMessagesDropped counts those past the proxy's cap.
	WSMessages        []wsframe.Message `json:"ws_messages,omitempty"`
	WSMessagesDropped int64             `json:"ws_messages_dropped,omitempty"`
}

// CloseInfo is the body of the "close" record.
type CloseInfo struct {
	Reason        string `json:"reason"`
	Exchanges     int64  `json:"exchanges"`
	RequestBytes  int64  `json:"request_bytes"`
	ResponseBytes int64  `json:"response_bytes"`
}

// InterruptInfo is the body of the "interrupted" record.
type InterruptInfo struct {
	Reason string `json:"reason"`
	// TornBytes is the length of the partial line before this record, or 0.
	TornBytes int `json:"torn_bytes,omitempty"`
}

// Seal identifies the end of a trail: the MAC of its last line and the number
// of records. Storing it elsewhere (the database) makes removal of trailing
// lines detectable.
type Seal struct {
	Head    string `json:"head"`
	Records int64  `json:"records"`
}

// record is one trail line without its mac.
type record struct {
	N           int64          `json:"n"`
	Kind        string         `json:"kind"`
	Time        time.Time      `json:"time"`
	Open        *SessionMeta   `json:"open,omitempty"`
	Exchange    *Exchange      `json:"exchange,omitempty"`
	Close       *CloseInfo     `json:"close,omitempty"`
	Interrupted *InterruptInfo `json:"interrupted,omitempty"`
	Prev        string         `json:"prev"`
}
