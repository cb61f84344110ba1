package recording

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/internal/version"
	"github.com/gatehouse-dev/gatehouse/internal/wsframe"
)

// creatorVersion is the Gatehouse version named in HAR files; a variable so
// that golden tests do not depend on how the test binary was built.
var creatorVersion = version.Version()

// HAR 1.2 document, http://www.softwareishard.com/blog/har-12-spec/. Names
// starting with an underscore are custom fields, which the format allows.
type harDoc struct {
	Log harLog `json:"log"`
}

type harLog struct {
	Version string     `json:"version"`
	Creator harCreator `json:"creator"`
	Comment string     `json:"comment,omitempty"`
	Entries []harEntry `json:"entries"`
}

type harCreator struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

type harEntry struct {
	StartedDateTime string      `json:"startedDateTime"`
	Time            float64     `json:"time"`
	Request         harRequest  `json:"request"`
	Response        harResponse `json:"response"`
	Cache           struct{}    `json:"cache"`
	Timings         harTimings  `json:"timings"`
	Comment         string      `json:"comment,omitempty"`
	Decision        string      `json:"_decision,omitempty"`
	Error           string      `json:"_error,omitempty"`
	WebSocket       bool        `json:"_webSocket,omitempty"`
	// WSMessages follows the shape Chromium's developer tools write and read.
	WSMessages []harWSMessage `json:"_webSocketMessages,omitempty"`
}

type harWSMessage struct {
	Type   string  `json:"type"` // "send" (client to target) or "receive"
	Time   float64 `json:"time"` // seconds since the Unix epoch
	Opcode int     `json:"opcode"`
	Data   string  `json:"data"`
	Size   int64   `json:"_size"`
}

type harRequest struct {
	Method      string       `json:"method"`
	URL         string       `json:"url"`
	HTTPVersion string       `json:"httpVersion"`
	Cookies     []harCookie  `json:"cookies"`
	Headers     []harNV      `json:"headers"`
	QueryString []harNV      `json:"queryString"`
	PostData    *harPostData `json:"postData,omitempty"`
	HeadersSize int          `json:"headersSize"`
	BodySize    int64        `json:"bodySize"`
}

type harResponse struct {
	Status      int         `json:"status"`
	StatusText  string      `json:"statusText"`
	HTTPVersion string      `json:"httpVersion"`
	Cookies     []harCookie `json:"cookies"`
	Headers     []harNV     `json:"headers"`
	Content     harContent  `json:"content"`
	RedirectURL string      `json:"redirectURL"`
	HeadersSize int         `json:"headersSize"`
	BodySize    int64       `json:"bodySize"`
}

type harNV struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type harCookie struct {
	Name     string `json:"name"`
	Value    string `json:"value"`
	Path     string `json:"path,omitempty"`
	Domain   string `json:"domain,omitempty"`
	Expires  string `json:"expires,omitempty"`
	HTTPOnly bool   `json:"httpOnly,omitempty"`
	Secure   bool   `json:"secure,omitempty"`
}

type harPostData struct {
	MimeType string `json:"mimeType"`
	Text     string `json:"text"`
	// Encoding is not in HAR 1.2 for postData; it mirrors content.encoding
	// for request bodies that are not UTF-8.
	Encoding  string `json:"_encoding,omitempty"`
	Truncated bool   `json:"_truncated,omitempty"`
}

type harContent struct {
	Size      int64  `json:"size"`
	MimeType  string `json:"mimeType"`
	Text      string `json:"text,omitempty"`
	Encoding  string `json:"encoding,omitempty"`
	Truncated bool   `json:"_truncated,omitempty"`
}

type harTimings struct {
	Send    float64 `json:"send"`
	Wait    float64 `json:"wait"`
	Receive float64 `json:"receive"`
}

// WriteHAR writes the exchanges of a session as a HAR 1.2 document that
// browser developer tools and HAR viewers open. The exchanges are expected
// to come from Read and so to be redacted already; WriteHAR does not redact.
// Captured bodies that are not valid UTF-8 are written base64-encoded; a cut
// body is marked with the custom field _truncated.
func WriteHAR(w io.Writer, meta SessionMeta, ex []Exchange) error {
	doc := harDoc{Log: harLog{
		Version: "1.2",
		Creator: harCreator{Name: "Gatehouse", Version: creatorVersion},
		Comment: fmt.Sprintf("session %s, user %s, target %s", meta.SessionID, meta.User, meta.Target),
		Entries: make([]harEntry, 0, len(ex)),
	}}
	for i := range ex {
		doc.Log.Entries = append(doc.Log.Entries, harEntryOf(&ex[i]))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // keep & and < readable in URLs and bodies
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write har: %w", err)
	}
	return nil
}

// harVersion is the httpVersion of an exchange. Trails written before the protocol was recorded hold the URL's
// scheme in Proto; what the client spoke then is not known, and HAR says so rather than guess.
func harVersion(proto string) string {
	if strings.HasPrefix(proto, "HTTP/") {
		return proto
	}
	return "unknown"
}

func harEntryOf(e *Exchange) harEntry {
	proto := harVersion(e.Proto)
	wait := e.WaitMS
	if wait <= 0 || wait > e.DurationMS {
		wait = e.DurationMS
	}
	he := harEntry{
		StartedDateTime: e.Started.UTC().Format(time.RFC3339Nano),
		Time:            e.DurationMS,
		Timings:         harTimings{Send: 0, Wait: wait, Receive: e.DurationMS - wait},
		Decision:        e.Decision,
		Error:           e.Error,
		WebSocket:       e.WebSocket,
		Request: harRequest{
			Method:      e.Method,
			URL:         e.URL,
			HTTPVersion: proto,
			Cookies:     requestCookies(e.RequestHeaders),
			Headers:     harHeaders(e.RequestHeaders),
			QueryString: queryString(e.URL),
			HeadersSize: -1,
			BodySize:    e.RequestBytes,
		},
		Response: harResponse{
			Status:      e.Status,
			StatusText:  http.StatusText(e.Status),
			HTTPVersion: proto,
			Cookies:     responseCookies(e.ResponseHeaders),
			Headers:     harHeaders(e.ResponseHeaders),
			RedirectURL: e.ResponseHeaders.Get("Location"),
			HeadersSize: -1,
			BodySize:    e.ResponseBytes,
		},
	}
	if len(e.RequestBody) > 0 || e.RequestBytes > 0 {
		text, enc := harText(e.RequestBody)
		he.Request.PostData = &harPostData{
			MimeType:  mediaType(e.RequestHeaders),
			Text:      text,
			Encoding:  enc,
			Truncated: e.RequestBodyTruncated,
		}
	}
	for _, m := range e.WSMessages {
		typ := "receive"
		if m.Direction == wsframe.ToTarget {
			typ = "send"
		}
		he.WSMessages = append(he.WSMessages, harWSMessage{Type: typ, Time: float64(m.Time.UnixMicro()) / 1e6,
			Opcode: wsframe.OpcodeNumber(m.Opcode), Data: m.Text, Size: m.Size})
	}
	text, enc := harText(e.ResponseBody)
	he.Response.Content = harContent{
		Size:      e.ResponseBytes,
		MimeType:  mediaType(e.ResponseHeaders),
		Text:      text,
		Encoding:  enc,
		Truncated: e.ResponseBodyTruncated,
	}
	return he
}

func harText(b []byte) (text, encoding string) {
	if utf8.Valid(b) {
		return string(b), ""
	}
	return base64.StdEncoding.EncodeToString(b), "base64"
}

// mediaType returns the Content-Type of h, or a neutral default so that
// viewers do not choke on an empty mimeType.
func mediaType(h http.Header) string {
	ct := h.Get("Content-Type")
	if ct == "" {
		return "application/octet-stream"
	}
	if _, _, err := mime.ParseMediaType(ct); err != nil {
		return "application/octet-stream"
	}
	return ct
}

// harHeaders lists h sorted by name, one entry per value, so that exports
// are stable.
func harHeaders(h http.Header) []harNV {
	out := []harNV{}
	for _, name := range slices.Sorted(maps.Keys(h)) {
		for _, v := range h[name] {
			out = append(out, harNV{Name: name, Value: v})
		}
	}
	return out
}

func queryString(rawURL string) []harNV {
	out := []harNV{}
	u, err := url.Parse(rawURL)
	if err != nil {
		return out
	}
	// ParseQuery keeps what it could parse when it reports an error, which is
	// what an export of a possibly odd request wants.
	q, _ := url.ParseQuery(u.RawQuery)
	for _, name := range slices.Sorted(maps.Keys(q)) {
		for _, v := range q[name] {
			out = append(out, harNV{Name: name, Value: v})
		}
	}
	return out
}

func requestCookies(h http.Header) []harCookie {
	out := []harCookie{}
	for _, c := range (&http.Request{Header: h}).Cookies() {
		out = append(out, harCookie{Name: c.Name, Value: c.Value})
	}
	return out
}

func responseCookies(h http.Header) []harCookie {
	out := []harCookie{}
	for _, c := range (&http.Response{Header: h}).Cookies() {
		hc := harCookie{Name: c.Name, Value: c.Value, Path: c.Path, Domain: c.Domain, HTTPOnly: c.HttpOnly, Secure: c.Secure}
		if !c.Expires.IsZero() {
			hc.Expires = c.Expires.UTC().Format(time.RFC3339)
		}
		out = append(out, hc)
	}
	return out
}
