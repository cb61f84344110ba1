package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func static(s Settings) func(context.Context) (Settings, error) {
	return func(context.Context) (Settings, error) { return s, nil }
}

// fakeSleep records the backoff waits instead of sleeping.
type fakeSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (f *fakeSleep) sleep(_ context.Context, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits = append(f.waits, d)
	return nil
}

type receiver struct {
	mu     sync.Mutex
	events []Event
	fail   int // answer 503 to this many requests first
	status int // then this status (0: 204)
	hits   int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.hits++
	if rc.hits <= rc.fail {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if rc.status != 0 {
		w.WriteHeader(rc.status)
		return
	}
	b, _ := io.ReadAll(r.Body)
	var ev Event
	if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Gatehouse-Event") == "" || json.Unmarshal(b, &ev) != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.events = append(rc.events, ev)
	w.WriteHeader(http.StatusNoContent)
}

func TestWebhookRetries(t *testing.T) {
	ev := Event{Kind: KindRequested, Source: "session", RequestID: "r1", Requester: "alice", Target: "orders",
		Time: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	cases := []struct {
		name      string
		fail      int
		status    int
		attempts  int
		wantErr   bool
		wantHits  int
		wantWaits []time.Duration
	}{
		{name: "delivered first time", wantHits: 1},
		{name: "retried with backoff", fail: 3, wantHits: 4,
			wantWaits: []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}},
		{name: "gives up after the attempts", fail: 100, attempts: 3, wantErr: true, wantHits: 3,
			wantWaits: []time.Duration{500 * time.Millisecond, time.Second}},
		{name: "a client error is final", status: http.StatusNotFound, wantErr: true, wantHits: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc := &receiver{fail: c.fail, status: c.status}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			fs := &fakeSleep{}
			n := New(static(Settings{Webhooks: []Webhook{{URL: srv.URL + "/hook?token=abc", Secret: testSecret}}}), nil)
			n.Sleep, n.Attempts = fs.sleep, c.attempts
			err := n.Deliver(context.Background(), ev)
			if (err != nil) != c.wantErr {
				t.Fatalf("Deliver: %v", err)
			}
			if err != nil && strings.Contains(err.Error(), "token=abc") {
				t.Errorf("error shows the webhook's query: %v", err)
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			if rc.hits != c.wantHits {
				t.Errorf("%d attempts, want %d", rc.hits, c.wantHits)
			}
			if len(fs.waits) != len(c.wantWaits) {
				t.Fatalf("waits %v, want %v", fs.waits, c.wantWaits)
			}
			for i := range fs.waits {
				if fs.waits[i] != c.wantWaits[i] {
					t.Errorf("waits %v, want %v", fs.waits, c.wantWaits)
				}
			}
			if !c.wantErr && (len(rc.events) != 1 || rc.events[0] != ev) {
				t.Errorf("received %+v, want %+v", rc.events, ev)
			}
		})
	}
}

func TestBackoffIsBounded(t *testing.T) {
	fs := &fakeSleep{}
	n := New(static(Settings{}), nil)
	n.Sleep, n.Attempts, n.Backoff, n.MaxBackoff = fs.sleep, 8, time.Second, 5*time.Second
	err := n.retry(context.Background(), func(context.Context) (bool, error) { return true, errors.New("down") })
	if err == nil {
		t.Fatal("no error after every attempt failed")
	}
	want := []time.Duration{1, 2, 4, 5, 5, 5, 5}
	for i, w := range want {
		if i >= len(fs.waits) || fs.waits[i] != w*time.Second {
			t.Fatalf("waits %v, want %v seconds", fs.waits, want)
		}
	}
}

func TestWebhookEventFilterAndQueue(t *testing.T) {
	var all, decided receiver
	s1, s2 := httptest.NewServer(&all), httptest.NewServer(&decided)
	defer s1.Close()
	defer s2.Close()
	n := New(static(Settings{Webhooks: []Webhook{{URL: s1.URL, Secret: testSecret}, {URL: s2.URL, Events: []string{KindApproved, KindRejected}, Secret: testSecret}}}), nil)
	ctx, cancel := context.WithCancel(context.Background())
	n.Start(ctx)
	for _, k := range Kinds {
		if err := n.Send(ctx, Event{Kind: k, RequestID: "r-" + k, Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	// The worker delivers in order; wait for the last event to arrive (bounded).
	for i := 0; ; i++ {
		all.mu.Lock()
		got := len(all.events)
		all.mu.Unlock()
		if got == len(Kinds) {
			break
		}
		if i > 500 {
			t.Fatalf("only %d of %d events arrived", got, len(Kinds))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	n.Wait()
	decided.mu.Lock()
	defer decided.mu.Unlock()
	if len(decided.events) != 2 || decided.events[0].Kind != KindApproved || decided.events[1].Kind != KindRejected {
		t.Fatalf("filtered webhook got %+v", decided.events)
	}
}

// testSecret signs the test webhooks: every webhook needs one.
const testSecret = "test-webhook-secret-0123"

func TestSettingsCheck(t *testing.T) {
	good := SMTP{Enabled: true, Host: "127.0.0.1", Port: 25, From: "gh@example.test", To: []string{"ops@example.test"}, TLSMode: TLSStartTLS}
	cases := []struct {
		name  string
		s     Settings
		field string
	}{
		{"empty", Settings{}, ""},
		{"good", Settings{Webhooks: []Webhook{{URL: "https://hooks.example.test/x", Secret: testSecret}}, SMTP: good}, ""},
		{"webhook scheme", Settings{Webhooks: []Webhook{{URL: "ftp://x", Secret: testSecret}}}, "webhooks[0].url"},
		{"webhook credentials", Settings{Webhooks: []Webhook{{URL: "https://u:p@x", Secret: testSecret}}}, "webhooks[0].url"},
		{"webhook event", Settings{Webhooks: []Webhook{{URL: "https://x", Events: []string{"deleted"}, Secret: testSecret}}}, "webhooks[0].events[0]"},
		{"webhook without a secret", Settings{Webhooks: []Webhook{{URL: "https://x"}}}, "webhooks[0].secret"},
		{"smtp host", Settings{SMTP: func() SMTP { m := good; m.Host = ""; return m }()}, "smtp.host"},
		{"smtp port", Settings{SMTP: func() SMTP { m := good; m.Port = 0; return m }()}, "smtp.port"},
		{"smtp from", Settings{SMTP: func() SMTP { m := good; m.From = "x\r\nBcc: y@z"; return m }()}, "smtp.from"},
		{"smtp to", Settings{SMTP: func() SMTP { m := good; m.To = []string{"a@b", "nobody"}; return m }()}, "smtp.to[1]"},
		{"smtp tls", Settings{SMTP: func() SMTP { m := good; m.TLSMode = "ssl"; return m }()}, "smtp.tls_mode"},
		{"smtp password alone", Settings{SMTP: func() SMTP { m := good; m.Password = "x"; return m }()}, "smtp.username"},
		{"smtp ca", Settings{SMTP: func() SMTP { m := good; m.CACertificate = "junk"; return m }()}, "smtp.ca_certificate"},
	}
	for _, c := range cases {
		err := c.s.Check()
		var fe *FieldError
		if c.field == "" && err != nil || c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field) {
			t.Errorf("%s: Check = %v, want field %q", c.name, err, c.field)
		}
	}
}
