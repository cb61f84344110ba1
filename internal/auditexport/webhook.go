package auditexport

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
)

// WebhookOptions configure the webhook destination.
type WebhookOptions struct {
	// URL receives one POST per event. It must be https://: the events name users and addresses.
	URL string
	// CAFile is a PEM bundle the receiver's certificate must chain to; empty means the system roots.
	CAFile string
	// Secret, if set, signs each POST: X-Gatehouse-Signature is "sha256=" and the hex HMAC-SHA256 of
	// "<X-Gatehouse-Timestamp>.<body>" under it.
	Secret []byte
	// Now is the clock for the timestamp header; nil means time.Now.
	Now func() time.Time
}

// Headers of a webhook POST.
const (
	SignatureHeader = "X-Gatehouse-Signature"
	TimestampHeader = "X-Gatehouse-Timestamp"
	EventIDHeader   = "X-Gatehouse-Event-Id"
)

// ParseWebhookURL checks a --audit-webhook value.
func ParseWebhookURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %w", s, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%q: want an https:// URL (audit events are not sent in clear)", s)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%q: credentials in the URL would be logged; use --audit-webhook-secret to sign instead", s)
	}
	return u, nil
}

type webhookSink struct {
	url    string
	client *http.Client
	secret []byte
	now    func() time.Time
}

func newWebhookSink(o WebhookOptions) (*webhookSink, error) {
	u, err := ParseWebhookURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("--audit-webhook: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		b, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--audit-webhook-ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--audit-webhook-ca: %s holds no PEM certificate", o.CAFile)
		}
	}
	tr := &http.Transport{TLSClientConfig: tc, Proxy: nil, MaxIdleConnsPerHost: 2, IdleConnTimeout: 90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &webhookSink{url: u.String(), secret: o.Secret, now: now,
		client: &http.Client{Transport: tr, Timeout: 15 * time.Second,
			// A redirect could carry the events somewhere else; the receiver must answer at the configured URL.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, nil
}

func (s *webhookSink) name() string { return "webhook" }

func (s *webhookSink) send(ctx context.Context, e model.AuditEvent) error {
	body, err := json.Marshal(e)
	if err != nil {
		return permanent("encode: %v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return permanent("request: %v", err)
	}
	ts := strconv.FormatInt(s.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gatehouse-audit-export")
	req.Header.Set(TimestampHeader, ts)
	req.Header.Set(EventIDHeader, strconv.FormatInt(e.ID, 10))
	if len(s.secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(s.secret, ts, body))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch st := resp.StatusCode; {
	case st >= 200 && st < 300:
		return nil
	case st == http.StatusRequestTimeout || st == http.StatusTooEarly || st == http.StatusTooManyRequests || st >= 500:
		return fmt.Errorf("POST: HTTP %d", st)
	default:
		return permanent("POST: HTTP %d", st)
	}
}

func (s *webhookSink) close() error {
	s.client.CloseIdleConnections()
	return nil
}

// Sign is the X-Gatehouse-Signature value for a body sent at timestamp ts (Unix seconds, as in the header). The
// timestamp is signed too, so a receiver that rejects old timestamps cannot be fed a replayed event.
func Sign(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
