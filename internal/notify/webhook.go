package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auditexport"
)

// client posts webhooks: no redirects (a receiver that moved must be reconfigured, not followed blindly), no
// cookies.
var client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// post sends ev as JSON. A 2xx answer delivers it; a 429, a 5xx or a network failure is worth retrying; any other
// answer is final.
// Every attempt gets a fresh signature. A webhook without a secret (saved before secrets were required) is not
// sent: an unsigned delivery cannot be told from a forged one.
func (n *Notifier) post(ctx context.Context, w Webhook, ev Event) (retryable bool, err error) {
	if w.Secret == "" {
		return false, ErrUnsigned
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gatehouse-notify")
	req.Header.Set("X-Gatehouse-Event", ev.Kind)
	now := time.Now
	if n.Now != nil {
		now = n.Now
	}
	ts := strconv.FormatInt(now().Unix(), 10)
	req.Header.Set(TimestampHeader, ts)
	req.Header.Set(SignatureHeader, Sign(w.Secret, ts, body))
	resp, err := client.Do(req)
	if err != nil {
		return true, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("answered %s", resp.Status)
	default:
		return false, fmt.Errorf("answered %s", resp.Status)
	}
}

// ErrUnsigned is the delivery refused to a webhook that has no signing secret.
var ErrUnsigned = errors.New("no signing secret, so not sent: set the webhook's secret in the notification settings")

// The headers of a signed delivery.
const (
	TimestampHeader = "X-Gatehouse-Timestamp" // Unix seconds when the attempt was sent
	SignatureHeader = "X-Gatehouse-Signature" // "sha256=" and the hex HMAC-SHA256 of timestamp "." body
)

// Sign is the signature header value of a delivery: HMAC-SHA256 keyed by the webhook's secret over the timestamp
// header's value, a dot and the exact body bytes. Covering the timestamp lets a receiver refuse old deliveries
// replayed with their signature. It is the audit export webhook's scheme, so one receiver verifies both.
func Sign(secret, timestamp string, body []byte) string {
	return auditexport.Sign([]byte(secret), timestamp, body)
}

// redactURL keeps a webhook's query (which may hold a token) out of logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.RawQuery, u.User = "", nil
	return u.String()
}
