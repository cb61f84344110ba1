package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// verifyingReceiver checks deliveries the way the README tells a receiver to, written here from the description
// rather than with Sign: recompute HMAC-SHA256(secret, timestamp "." body), compare in constant time, refuse a
// timestamp outside the window and a signature seen before.
type verifyingReceiver struct {
	secret string
	now    time.Time
	window time.Duration

	mu       sync.Mutex
	seen     map[string]bool
	accepted [][]byte
	refused  []string
}

func (v *verifyingReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	v.mu.Lock()
	defer v.mu.Unlock()
	refuse := func(why string) {
		v.refused = append(v.refused, why)
		w.WriteHeader(http.StatusUnauthorized)
	}
	ts, sig := r.Header.Get("X-Gatehouse-Timestamp"), r.Header.Get("X-Gatehouse-Signature")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		refuse("no timestamp")
		return
	}
	if d := v.now.Sub(time.Unix(sec, 0)); d > v.window || d < -v.window {
		refuse("stale timestamp")
		return
	}
	hexSig, ok := strings.CutPrefix(sig, "sha256=")
	got, err := hex.DecodeString(hexSig)
	if !ok || err != nil {
		refuse("no signature")
		return
	}
	m := hmac.New(sha256.New, []byte(v.secret))
	m.Write([]byte(ts + "." + string(body)))
	if !hmac.Equal(got, m.Sum(nil)) {
		refuse("bad signature")
		return
	}
	if v.seen[sig] {
		refuse("replayed")
		return
	}
	v.seen[sig] = true
	v.accepted = append(v.accepted, body)
	w.WriteHeader(http.StatusNoContent)
}

// TestWebhookSignature: a delivery to a webhook with a secret carries a timestamp and an HMAC-SHA256 signature
// that an independent receiver verifies; a body changed on the way, a wrong secret, a replay and an old
// timestamp are refused, and a webhook without a secret is not signed.
func TestWebhookSignature(t *testing.T) {
	const secret = "hook-secret-0123456789abcdef"
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	v := &verifyingReceiver{secret: secret, now: now, window: 5 * time.Minute, seen: map[string]bool{}}
	recv := httptest.NewServer(v)
	defer recv.Close()

	// tamper relays a delivery to the receiver with the body changed, headers kept.
	var captured struct {
		sync.Mutex
		header http.Header
		body   []byte
	}
	tamper := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		captured.Lock()
		captured.header, captured.body = r.Header.Clone(), b
		captured.Unlock()
		req, _ := http.NewRequest("POST", recv.URL, bytes.NewReader(bytes.Replace(b, []byte(`"rejected"`), []byte(`"approved"`), 1)))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
	}))
	defer tamper.Close()

	deliver := func(n *Notifier, kind string) error {
		n.Attempts, n.Sleep, n.Now = 1, (&fakeSleep{}).sleep, func() time.Time { return now }
		return n.Deliver(context.Background(), Event{Kind: kind, Source: "session", RequestID: "r-" + kind, Time: now})
	}
	if err := deliver(New(static(Settings{Webhooks: []Webhook{{URL: recv.URL, Secret: secret}}}), nil), KindApproved); err != nil {
		t.Fatalf("signed delivery refused: %v (refusals %v)", err, v.refused)
	}
	if len(v.accepted) != 1 || !bytes.Contains(v.accepted[0], []byte(`"r-approved"`)) {
		t.Fatalf("accepted %q", v.accepted)
	}

	cases := []struct {
		name  string
		hooks []Webhook
		why   string
	}{
		{"tampered body", []Webhook{{URL: tamper.URL, Secret: secret}}, "bad signature"},
		{"other secret", []Webhook{{URL: recv.URL, Secret: "another-secret-0123456789"}}, "bad signature"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v.mu.Lock()
			v.refused = nil
			v.mu.Unlock()
			if err := deliver(New(static(Settings{Webhooks: c.hooks}), nil), KindRejected); err == nil {
				t.Fatal("the receiver accepted it")
			}
			if len(v.refused) != 1 || v.refused[0] != c.why {
				t.Fatalf("refusals %v, want %q", v.refused, c.why)
			}
		})
	}

	// What the tamperer saw was genuine: replaying it unchanged is refused as seen, and so is the same delivery
	// presented after the window.
	captured.Lock()
	h, b := captured.header, captured.body
	captured.Unlock()
	if h.Get(SignatureHeader) != Sign(secret, h.Get(TimestampHeader), b) || h.Get(TimestampHeader) != strconv.FormatInt(now.Unix(), 10) {
		t.Fatalf("signature headers %v", h)
	}
	post := func() string {
		v.mu.Lock()
		v.refused = nil
		v.mu.Unlock()
		req, _ := http.NewRequest("POST", recv.URL, bytes.NewReader(b))
		req.Header = h.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNoContent {
			return "accepted"
		}
		return strings.Join(v.refused, ",")
	}
	if got := post(); got != "accepted" {
		t.Fatalf("the untampered original: %s", got)
	}
	if got := post(); got != "replayed" {
		t.Fatalf("a replay: %s", got)
	}
	v.mu.Lock()
	v.now, v.seen = now.Add(10*time.Minute), map[string]bool{}
	v.mu.Unlock()
	if got := post(); got != "stale timestamp" {
		t.Fatalf("an old delivery: %s", got)
	}
}

func TestWebhookSecretCheck(t *testing.T) {
	for _, c := range []struct {
		secret, field string
	}{{"", "webhooks[0].secret"}, {"short", "webhooks[0].secret"}, {strings.Repeat("k", MinSecretLength), ""}} {
		err := Settings{Webhooks: []Webhook{{URL: "https://hooks.example.test/x", Secret: c.secret}}}.Check()
		var fe *FieldError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("secret %q: %v", c.secret, err)
		case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field):
			t.Errorf("secret %q: %v, want a fault in %s", c.secret, err, c.field)
		}
	}
}

// TestUnsignedWebhookNotSent: a webhook stored without a secret (before secrets were required) is not sent
// unsigned; the failure says why and nothing reaches the receiver, while a signed webhook beside it still gets
// the event.
func TestUnsignedWebhookNotSent(t *testing.T) {
	var unsigned, signed receiver
	u, s := httptest.NewServer(&unsigned), httptest.NewServer(&signed)
	defer u.Close()
	defer s.Close()
	n := New(static(Settings{Webhooks: []Webhook{{URL: u.URL}, {URL: s.URL, Secret: testSecret}}}), nil)
	n.Attempts, n.Sleep = 3, (&fakeSleep{}).sleep
	err := n.Deliver(context.Background(), Event{Kind: KindApproved, RequestID: "r-1", Time: time.Now()})
	if !errors.Is(err, ErrUnsigned) {
		t.Errorf("Deliver: %v, want ErrUnsigned", err)
	}
	if unsigned.hits != 0 {
		t.Errorf("the unsigned webhook got %d requests", unsigned.hits)
	}
	if signed.hits != 1 {
		t.Errorf("the signed webhook got %d requests, want 1", signed.hits)
	}
}
