// Package notify tells people about approval events: a JSON webhook per event and e-mail over SMTP, delivered in
// the background with bounded retries. Session approvals (package approval) and just-in-time role requests use
// the same Notifier.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// The kinds of event.
const (
	KindRequested = "requested"
	KindApproved  = "approved"
	KindRejected  = "rejected"
	KindExpired   = "expired"
	KindRevoked   = "revoked"
)

// Kinds lists every kind of event, in the order of a request's life.
var Kinds = []string{KindRequested, KindApproved, KindRejected, KindExpired, KindRevoked}

// Event is one thing that happened to an approval or access request. Source says which: "session" for a session
// approval (RequestID is the approval request, Target the API target), "workflow" for a role request (Role is
// the role asked for). None of it is secret.
type Event struct {
	Kind          string    `json:"event"`
	Source        string    `json:"source"`
	RequestID     string    `json:"request_id"`
	Requester     string    `json:"requester"`
	ClientAddress string    `json:"client_address,omitempty"`
	Target        string    `json:"target,omitempty"`
	Role          string    `json:"role,omitempty"`
	RequestLine   string    `json:"request_line,omitempty"`
	Decider       string    `json:"decider,omitempty"`
	Comment       string    `json:"comment,omitempty"`
	Time          time.Time `json:"time"`
	// Until, for a granted role, is when the grant ends.
	Until time.Time `json:"until,omitzero"`
}

// Settings say where events go. The zero value sends nothing.
type Settings struct {
	Webhooks []Webhook `json:"webhooks"`
	SMTP     SMTP      `json:"smtp"`
}

// Webhook is one receiver of JSON events: every event is POSTed to URL, or only the Events it lists. With a
// Secret, every delivery is signed (see sign); the APIs never show it and it is sealed at rest.
type Webhook struct {
	URL    string   `json:"url"`
	Events []string `json:"events,omitempty"`
	Secret string   `json:"-"`
}

// MinSecretLength is the shortest webhook secret accepted: an HMAC key that cannot be guessed.
const MinSecretLength = 16

// wants reports whether the webhook takes events of kind.
func (w Webhook) wants(kind string) bool {
	return len(w.Events) == 0 || slices.Contains(w.Events, kind)
}

// TLS modes of SMTP.
const (
	TLSNone     = "none"     // plain SMTP; credentials are only sent to a loopback server
	TLSStartTLS = "starttls" // STARTTLS is required before anything is sent
	TLSImplicit = "tls"      // SMTPS: TLS from the first byte
)

// SMTP is the e-mail relay. Password is never shown by the APIs and sealed at rest.
type SMTP struct {
	Enabled  bool     `json:"enabled"`
	Host     string   `json:"host"`
	Port     int      `json:"port"`
	From     string   `json:"from"`
	To       []string `json:"to"`
	TLSMode  string   `json:"tls_mode"`
	Username string   `json:"username,omitempty"`
	Password string   `json:"-"`
	// CACertificate, if set, is the PEM of the CA the server's certificate must chain to, instead of the system
	// roots.
	CACertificate string `json:"ca_certificate,omitempty"`
}

// FieldError is a setting at fault.
type FieldError struct{ Field, Msg string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Check validates the settings; the error names the field.
func (s Settings) Check() error {
	for i, w := range s.Webhooks {
		f := fmt.Sprintf("webhooks[%d]", i)
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return &FieldError{f + ".url", "must be an absolute http or https URL"}
		}
		if u.User != nil {
			return &FieldError{f + ".url", "must not carry credentials"}
		}
		// An unsigned delivery cannot be told from a forged one, so a webhook without a secret is refused rather
		// than sent unsigned.
		if w.Secret == "" {
			return &FieldError{f + ".secret", fmt.Sprintf("is required (at least %d characters): every delivery is signed with it so that the receiver can tell Gatehouse's events from forged ones", MinSecretLength)}
		}
		if len(w.Secret) < MinSecretLength {
			return &FieldError{f + ".secret", fmt.Sprintf("must be at least %d characters", MinSecretLength)}
		}
		for j, k := range w.Events {
			if !slices.Contains(Kinds, k) {
				return &FieldError{fmt.Sprintf("%s.events[%d]", f, j), "must be one of " + strings.Join(Kinds, ", ")}
			}
		}
	}
	m := s.SMTP
	if !m.Enabled {
		return nil
	}
	switch {
	case strings.TrimSpace(m.Host) == "":
		return &FieldError{"smtp.host", "is required when smtp is enabled"}
	case m.Port < 1 || m.Port > 65535:
		return &FieldError{"smtp.port", "must be between 1 and 65535"}
	case !validAddress(m.From):
		return &FieldError{"smtp.from", "must be an e-mail address"}
	case len(m.To) == 0:
		return &FieldError{"smtp.to", "must list at least one recipient"}
	case m.TLSMode != TLSNone && m.TLSMode != TLSStartTLS && m.TLSMode != TLSImplicit:
		return &FieldError{"smtp.tls_mode", "must be none, starttls or tls"}
	case m.Password != "" && m.Username == "":
		return &FieldError{"smtp.username", "is required with a password"}
	}
	for i, to := range m.To {
		if !validAddress(to) {
			return &FieldError{fmt.Sprintf("smtp.to[%d]", i), "must be an e-mail address"}
		}
	}
	if m.CACertificate != "" {
		if _, err := certPool(m.CACertificate); err != nil {
			return &FieldError{"smtp.ca_certificate", err.Error()}
		}
	}
	return nil
}

// validAddress accepts a bare addr-spec without anything that could break the SMTP dialogue or the header.
func validAddress(a string) bool {
	local, domain, ok := strings.Cut(a, "@")
	return ok && local != "" && domain != "" && !strings.ContainsAny(a, " \t\r\n<>,;:\"\\") && !strings.Contains(domain, "@")
}

// Notifier delivers events in the background. Start it before Send; its zero value is not usable, build it with
// New.
type Notifier struct {
	// Settings returns the current settings; it is asked once per event, so changes apply to the next one.
	settings func(ctx context.Context) (Settings, error)
	log      *slog.Logger
	// Attempts is how often a webhook or mail is tried in all; zero means 5.
	Attempts int
	// Backoff is the wait before the second attempt, doubled before each further one up to MaxBackoff; zero means
	// 500ms (and MaxBackoff zero means 30s).
	Backoff, MaxBackoff time.Duration
	// Sleep waits between attempts; nil waits on a timer. Tests use a fake.
	Sleep func(ctx context.Context, d time.Duration) error
	// Timeout bounds one attempt; zero means 10s.
	Timeout time.Duration
	// Now returns the current time, for the signature timestamp; nil means time.Now.
	Now func() time.Time

	queue chan Event
	once  sync.Once
	wg    sync.WaitGroup
}

// ErrQueueFull is returned by Send when too many events wait for delivery; the event is dropped and logged.
var ErrQueueFull = errors.New("notify: queue full")

// New returns a notifier that reads its settings through settings.
func New(settings func(ctx context.Context) (Settings, error), log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Notifier{settings: settings, log: log, queue: make(chan Event, 1000)}
}

// Start runs the delivery worker until ctx ends; events still queued then are dropped.
func (n *Notifier) Start(ctx context.Context) {
	n.once.Do(func() {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case ev := <-n.queue:
					if err := n.Deliver(ctx, ev); err != nil {
						n.log.Error("notification not delivered", "event", ev.Kind, "request", ev.RequestID, "err", err)
					}
				}
			}
		}()
	})
}

// Wait returns once the worker stopped (after Start's ctx ended).
func (n *Notifier) Wait() { n.wg.Wait() }

// Send queues ev for delivery and returns at once. A nil Notifier sends nothing.
func (n *Notifier) Send(_ context.Context, ev Event) error {
	if n == nil {
		return nil
	}
	select {
	case n.queue <- ev:
		return nil
	default:
		n.log.Error("notification queue full; event dropped", "event", ev.Kind, "request", ev.RequestID)
		return ErrQueueFull
	}
}

// Deliver sends ev now to every webhook that wants it and by mail, each with its retries, and reports every
// failure.
func (n *Notifier) Deliver(ctx context.Context, ev Event) error {
	set, err := n.settings(ctx)
	if err != nil {
		return fmt.Errorf("notify: settings: %w", err)
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	var errs []error
	for _, w := range set.Webhooks {
		if w.wants(ev.Kind) {
			if err := n.retry(ctx, func(ctx context.Context) (bool, error) { return n.post(ctx, w, ev) }); err != nil {
				errs = append(errs, fmt.Errorf("webhook %s: %w", redactURL(w.URL), err))
			}
		}
	}
	if set.SMTP.Enabled {
		if err := n.retry(ctx, func(ctx context.Context) (bool, error) { return true, n.mail(ctx, set.SMTP, ev) }); err != nil {
			errs = append(errs, fmt.Errorf("smtp %s:%d: %w", set.SMTP.Host, set.SMTP.Port, err))
		}
	}
	return errors.Join(errs...)
}

// retry runs attempt until it succeeds, says the failure is final (retryable false), or the attempts are spent.
func (n *Notifier) retry(ctx context.Context, attempt func(context.Context) (retryable bool, err error)) error {
	tries := n.Attempts
	if tries <= 0 {
		tries = 5
	}
	wait, most := n.Backoff, n.MaxBackoff
	if wait <= 0 {
		wait = 500 * time.Millisecond
	}
	if most <= 0 {
		most = 30 * time.Second
	}
	timeout := n.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	var err error
	for i := range tries {
		if i > 0 {
			if serr := n.sleep(ctx, wait); serr != nil {
				return errors.Join(err, serr)
			}
			wait = min(2*wait, most)
		}
		actx, cancel := context.WithTimeout(ctx, timeout)
		var retryable bool
		retryable, err = attempt(actx)
		cancel()
		if err == nil || !retryable {
			return err
		}
	}
	return fmt.Errorf("after %d attempts: %w", tries, err)
}

func (n *Notifier) sleep(ctx context.Context, d time.Duration) error {
	if n.Sleep != nil {
		return n.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
