package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/gatehouse-dev/gatehouse/internal/configapi"
)

// apiError is a service API error answer, kept whole so a form can show the message next to the field it names.
type apiError struct {
	Status   int    `json:"-"`
	Code     string `json:"error_code"`
	Message  string `json:"error_message"`
	Property string `json:"property"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("service api: %d %s: %s", e.Status, e.Code, e.Message)
}

// call sends one service API request in process, as the session's user, from the browser's address, and decodes
// the JSON answer into out (a *[]byte receives the raw body). Error answers come back as *apiError.
func (c *Console) call(ctx context.Context, r *http.Request, s *session, method, path string, body, out any) error {
	req, err := c.apiRequest(ctx, r, s, method, path, body)
	if err != nil {
		return err
	}
	rec := &recorder{header: http.Header{}}
	c.Backend.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status >= 400 {
		ae := &apiError{Status: rec.status}
		if err := json.Unmarshal(rec.body.Bytes(), ae); err != nil || ae.Message == "" {
			// The configuration API's shape: {"error":{"code","message","details":{"field"}}}.
			var ce struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
					Details struct {
						Field string `json:"field"`
					} `json:"details"`
				} `json:"error"`
			}
			if json.Unmarshal(rec.body.Bytes(), &ce) == nil && ce.Error.Message != "" {
				ae.Code, ae.Message, ae.Property = ce.Error.Code, ce.Error.Message, ce.Error.Details.Field
			} else {
				ae.Message = http.StatusText(rec.status)
			}
		}
		return ae
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*o = rec.body.Bytes()
		return nil
	default:
		if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
			return fmt.Errorf("decode %s %s: %w", method, path, err)
		}
		return nil
	}
}

// apiRequest builds the in-process request: the signed-in user's short-lived token, and the browser's address and
// TLS state so the API's audit and limits see the real client.
func (c *Console) apiRequest(ctx context.Context, r *http.Request, s *session, method, path string, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	u, err := url.ParseRequestURI(path)
	if err != nil {
		return nil, fmt.Errorf("api path %q: %w", path, err)
	}
	// The configuration API's transaction belongs to this console session, not to the request's one-off token.
	ctx = configapi.WithSessionHolder(ctx, c.csrfToken("transaction-holder:"+s.id))
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.RemoteAddr, req.TLS, req.Host = r.RemoteAddr, r.TLS, r.Host
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// recorder collects an in-process API answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(p)
}

// list is the service API's list shape.
type list[T any] struct {
	Count int `json:"count"`
	Items []T `json:"items"`
}

// query joins path and non-empty parameters.
func query(path string, kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}
