package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// apiClient calls the service API of the server a session points at, refreshing the access token when it has
// expired or the server refuses it.
type apiClient struct {
	sess *session
	http *http.Client
	// now is the clock used to decide whether the token has expired.
	now func() time.Time
}

// newAPIClient loads the cached session and builds a client for it.
func newAPIClient() (*apiClient, error) {
	s, err := loadSession()
	if err != nil {
		return nil, err
	}
	hc, err := s.httpClient()
	if err != nil {
		return nil, err
	}
	return &apiClient{sess: s, http: hc, now: time.Now}, nil
}

// apiError is the service API's error body with the HTTP status it came with.
type apiError struct {
	Status   int             `json:"-"`
	Code     string          `json:"error_code"`
	Message  string          `json:"error_message"`
	Property string          `json:"property"`
	Details  json.RawMessage `json:"details"`
}

func (e *apiError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Property != "" {
		msg += " (property: " + e.Property + ")"
	}
	code := e.Code
	if code == "" {
		code = "HTTP"
	}
	return fmt.Sprintf("%s [%s %d]", msg, code, e.Status)
}

// decodeAPIError turns a non-2xx answer into an *apiError, keeping the body's text when it is not the service
// API's error shape.
func decodeAPIError(status int, body []byte) error {
	e := &apiError{Status: status}
	if json.Unmarshal(body, e) != nil || (e.Code == "" && e.Message == "") {
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200] + "..."
		}
	}
	return e
}

// request is one call: a path under the server, optional query and body. A body that is json.RawMessage or
// []byte is sent as is, anything else is encoded as JSON.
type request struct {
	method string
	path   string
	query  url.Values
	body   any
}

// do sends req and returns the answer's body, or an *apiError for a non-2xx status.
func (c *apiClient) do(ctx context.Context, req request) ([]byte, error) {
	var payload []byte
	switch b := req.body.(type) {
	case nil:
	case json.RawMessage:
		payload = b
	case []byte:
		payload = b
	default:
		var err error
		if payload, err = json.Marshal(b); err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
	}
	if c.sess.expired(c.now()) {
		if err := c.sess.refresh(ctx, c.http); err != nil {
			return nil, err
		}
	}
	status, body, err := c.send(ctx, req, payload)
	if err == nil && status == http.StatusUnauthorized && c.sess.RefreshToken != "" {
		// The token may have been revoked or signed with a key the server no longer has; one refresh decides.
		if err := c.sess.refresh(ctx, c.http); err != nil {
			return nil, err
		}
		status, body, err = c.send(ctx, req, payload)
	}
	if err != nil {
		return nil, err
	}
	if status < 200 || status > 299 {
		return nil, decodeAPIError(status, body)
	}
	return body, nil
}

func (c *apiClient) send(ctx context.Context, req request, payload []byte) (int, []byte, error) {
	u := c.sess.Server + req.path
	if len(req.query) > 0 {
		u += "?" + req.query.Encode()
	}
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", req.method, req.path, err)
	}
	if payload != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	hr.Header.Set("Authorization", "Bearer "+c.sess.AccessToken)
	resp, err := c.http.Do(hr)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", req.method, req.path, explainTLS(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: read answer: %w", req.method, req.path, err)
	}
	return resp.StatusCode, body, nil
}

// get fetches path and decodes the JSON answer into out.
func (c *apiClient) get(ctx context.Context, path string, query url.Values, out any) error {
	b, err := c.do(ctx, request{method: http.MethodGet, path: path, query: query})
	if err != nil {
		return err
	}
	return decodeInto(b, out)
}

// call sends method with a JSON body and decodes the answer into out (nil to ignore it).
func (c *apiClient) call(ctx context.Context, method, path string, body, out any) error {
	b, err := c.do(ctx, request{method: method, path: path, body: body})
	if err != nil {
		return err
	}
	if out == nil || len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	return decodeInto(b, out)
}

func decodeInto(b []byte, out any) error {
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = append((*raw)[:0], b...)
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

// listAll fetches every page of a {"count","items"} list.
func (c *apiClient) listAll(ctx context.Context, path string, query url.Values) ([]json.RawMessage, error) {
	const page = 100
	var items []json.RawMessage
	for {
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		q.Set("offset", fmt.Sprint(len(items)))
		q.Set("limit", fmt.Sprint(page))
		var l struct {
			Count int               `json:"count"`
			Items []json.RawMessage `json:"items"`
		}
		if err := c.get(ctx, path, q, &l); err != nil {
			return nil, err
		}
		items = append(items, l.Items...)
		if len(l.Items) == 0 || len(items) >= l.Count {
			return items, nil
		}
	}
}

// isNotFound reports whether err is the server's 404.
func isNotFound(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// isForbidden reports whether err is the server's 403.
func isForbidden(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == http.StatusForbidden
}
