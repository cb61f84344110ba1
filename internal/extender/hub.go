package extender

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/httpauth"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/hashicorp/yamux"
)

// Identity is who a connecting agent is, as its token says.
type Identity struct {
	ID     string
	Name   string
	Prefix string
	// Credential names what the agent presented (the token's keyed hash or the certificate's fingerprint), so
	// Check can tell a re-keyed extender from the one that connected. It is opaque to the hub.
	Credential string
}

// Link is one agent session as the cluster's registry records it: Key is unique to the session.
type Link struct {
	Key      string
	Extender Identity
	Status   Status
}

// Dialer opens connections through extenders that this hub does not hold; a cluster's relay to the other nodes.
type Dialer interface {
	Dial(ctx context.Context, prefix, addr string) (net.Conn, error)
}

// Status is what the hub reports of one extender's connection. A zero Since means no agent holds one.
type Status struct {
	Since     time.Time
	Address   string
	Version   string
	Heartbeat time.Time
}

// limiterName is the name refused tokens count under in the login limiter; tokens have no user name, so all
// share it, and only the per-source counts refuse.
const limiterName = "(extender token)"

// ErrRefused is what Authenticate returns for a token that is unknown, revoked or belongs to a disabled extender.
var ErrRefused = errors.New("extender token refused")

// Refusal is a refused credential with its reason; it matches ErrRefused.
type Refusal struct {
	// Reason is short and names no secret: "unknown or revoked token", "extender disabled", "revoked
	// certificate", ...
	Reason string
	// ExtenderID and Extender name the extender when the credential identifies one.
	ExtenderID, Extender string
}

func (r *Refusal) Error() string        { return "extender credential refused: " + r.Reason }
func (r *Refusal) Is(target error) bool { return target == ErrRefused }
func refusalOf(err error) *Refusal {
	var r *Refusal
	if errors.As(err, &r) {
		return r
	}
	return &Refusal{Reason: "refused"}
}

// UnavailableError is a dial through a prefix that no connected extender serves.
type UnavailableError struct{ Prefix string }

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("no extender connected for routing prefix %q", e.Prefix)
}

// ExtenderFailure is the client-safe code and message of the failure; the proxy shows it in its 502.
func (e *UnavailableError) ExtenderFailure() (string, string) {
	return "EXTENDER_UNAVAILABLE", e.Error()
}

// DialError is the agent's refusal or failure to reach the address the gateway asked for.
type DialError struct {
	Prefix, Addr, Reason string
}

func (e *DialError) Error() string {
	return fmt.Sprintf("extender %q could not reach %s: %s", e.Prefix, e.Addr, e.Reason)
}

// ExtenderFailure names the prefix and address but not the agent's reason, which may describe the segment.
func (e *DialError) ExtenderFailure() (string, string) {
	return "EXTENDER_DIAL_FAILED", fmt.Sprintf("extender %q could not reach the target", e.Prefix)
}

// Hub keeps the agents' sessions and dials through them. Authenticate is required.
type Hub struct {
	// Authenticate maps an enrolment token to its extender, or returns an error matching ErrRefused (a *Refusal
	// says why).
	Authenticate func(ctx context.Context, token string) (Identity, error)
	// AuthenticateCert maps the client certificate chain the agent presented in its TLS handshake to its extender,
	// like Authenticate; nil refuses certificates.
	AuthenticateCert func(ctx context.Context, chain []*x509.Certificate) (Identity, error)
	// OnRefused, if set, records a refused connect (an audit event) with the agent's address and the refusal.
	// Calls are rate-limited per source and reason, as the log lines are.
	OnRefused func(ctx context.Context, r RefusedConnect)
	// OnStatus, if set, records an extender's connection status (connect, heartbeat, disconnect).
	OnStatus func(ctx context.Context, id string, st Status)
	// Limiter throttles refused tokens per source address, like failed logins; nil means no throttling.
	Limiter auth.LoginLimiter
	// Log receives connects, disconnects and failures; nil discards.
	Log *slog.Logger
	// HeartbeatInterval is how often the hub pings each agent; zero means 15 seconds.
	HeartbeatInterval time.Duration
	// DialTimeout bounds opening a stream and the agent's answer to it; zero means 10 seconds.
	DialTimeout time.Duration
	// OnLink, if set, records each session in the cluster's registry: up at connect and at every heartbeat, down
	// when the session ends, so other nodes know where to relay.
	OnLink func(ctx context.Context, l Link, up bool)
	// Check, if set, runs at every heartbeat and from Revalidate: ErrRefused ends the session (its extender was
	// deleted, disabled or re-keyed, perhaps through another node); other errors keep it.
	Check func(ctx context.Context, id Identity) error
	// Relay dials through extenders held by other nodes when this hub holds none for the prefix; nil means a
	// node of its own.
	Relay Dialer

	mu       sync.Mutex
	links    map[string][]*link // by routing prefix
	next     map[string]int
	refusals refusalGate
}

type link struct {
	key    string
	id     Identity
	sess   *yamux.Session
	status Status
}

func (h *Hub) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}

// ServeHTTP is the connect endpoint: it authenticates the token or client certificate, answers 101 and runs the
// session until it ends.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, ok := httpauth.Credentials(r.Header.Get("Authorization"), "Bearer")
	if !ok {
		token = "" // another scheme is no token: the certificate, if any, decides
	}
	if r.Method != http.MethodGet || !strings.EqualFold(r.Header.Get("Upgrade"), Protocol) {
		http.Error(w, "extender connect needs GET with Upgrade: "+Protocol, http.StatusBadRequest)
		return
	}
	var certs []*x509.Certificate
	if r.TLS != nil && h.AuthenticateCert != nil {
		certs = r.TLS.PeerCertificates
	}
	kind := "token"
	if token == "" {
		if len(certs) == 0 {
			http.Error(w, "extender token or client certificate required", http.StatusUnauthorized)
			return
		}
		kind = "certificate"
	}
	source := r.RemoteAddr
	if host, _, err := net.SplitHostPort(source); err == nil {
		source = host
	}
	if h.Limiter != nil {
		d := h.Limiter.Check(r.Context(), source, limiterName)
		if d.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(d.RetryAfter.Seconds())+1))
			http.Error(w, "too many refused extender credentials", http.StatusTooManyRequests)
			return
		}
		if d.Wait(r.Context()) != nil {
			return
		}
	}
	var id Identity
	var err error
	if kind == "token" {
		id, err = h.Authenticate(r.Context(), token)
	} else {
		id, err = h.AuthenticateCert(r.Context(), certs)
	}
	if err != nil {
		if !errors.Is(err, ErrRefused) {
			h.log().Error("extender authenticate", "err", err)
			http.Error(w, "extender authentication failed", http.StatusServiceUnavailable)
			return
		}
		if h.Limiter != nil {
			h.Limiter.Failed(r.Context(), source, limiterName)
		}
		h.refusedConnect(r.Context(), r.RemoteAddr, kind, err)
		http.Error(w, "extender "+kind+" refused", http.StatusUnauthorized)
		return
	}
	if r.ProtoMajor != 1 {
		http.Error(w, "extender connect needs HTTP/1.1", http.StatusHTTPVersionNotSupported)
		return
	}
	// ResponseController finds the connection through the API's wrapping writers (metrics, access log).
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		h.log().Error("extender hijack", "err", err)
		return
	}
	// The API server's read and write timeouts were for one request; the session lives for hours.
	conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+Protocol+"\r\n\r\n"); err != nil {
		conn.Close()
		return
	}
	cfg := sessionConfig()
	// The hub pings on its own schedule and records the answers; yamux's keepalive would only duplicate them.
	cfg.EnableKeepAlive = false
	sess, err := yamux.Client(&headerJoiner{Conn: &bufConn{Conn: conn, r: rw.Reader}}, cfg)
	if err != nil {
		conn.Close()
		return
	}
	version := r.Header.Get(VersionHeader)
	if len(version) > 64 {
		version = version[:64]
	}
	now := time.Now()
	l := &link{key: secrets.RandomToken(16), id: id, sess: sess, status: Status{Since: now, Address: r.RemoteAddr, Version: version, Heartbeat: now}}
	h.add(l)
	h.log().Info("extender connected", "extender", id.Name, "prefix", id.Prefix, "remote", r.RemoteAddr, "version", version)
	h.report(l, true)
	h.watch(l)
	h.remove(l)
	h.log().Info("extender disconnected", "extender", id.Name, "prefix", id.Prefix, "remote", r.RemoteAddr)
	h.report(l, false)
}

// watch pings the agent until the session ends or a ping fails.
func (h *Hub) watch(l *link) {
	every := h.HeartbeatInterval
	if every <= 0 {
		every = 15 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	defer l.sess.Close()
	for {
		select {
		case <-l.sess.CloseChan():
			return
		case <-t.C:
			if _, err := l.sess.Ping(); err != nil {
				h.log().Warn("extender heartbeat failed", "extender", l.id.Name, "err", err)
				return
			}
			if h.refused(l) {
				return
			}
			h.mu.Lock()
			l.status.Heartbeat = time.Now()
			h.mu.Unlock()
			h.report(l, true)
		}
	}
}

// refused asks Check whether the link's extender still holds the credential it connected with.
func (h *Hub) refused(l *link) bool {
	if h.Check == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := h.Check(ctx, l.id)
	if errors.Is(err, ErrRefused) {
		h.log().Warn("extender no longer admitted; closing its session", "extender", l.id.Name, "prefix", l.id.Prefix)
		return true
	}
	if err != nil {
		h.log().Warn("extender check failed; keeping the session", "extender", l.id.Name, "err", err)
	}
	return false
}

// Revalidate runs Check on every session now, for a change announced by another node, and closes those refused.
func (h *Hub) Revalidate() {
	h.mu.Lock()
	var all []*link
	for _, list := range h.links {
		all = append(all, list...)
	}
	h.mu.Unlock()
	for _, l := range all {
		if h.refused(l) {
			l.sess.Close()
		}
	}
}

// report records a link's state: the extender's status (another live link of the same extender wins over a
// closed one) and the cluster registry entry.
func (h *Hub) report(l *link, up bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h.mu.Lock()
	cur := l.status
	h.mu.Unlock()
	st := cur
	if !up {
		st = h.statusOf(l.id.ID)
	}
	if h.OnStatus != nil {
		h.OnStatus(ctx, l.id.ID, st)
	}
	if h.OnLink != nil {
		h.OnLink(ctx, Link{Key: l.key, Extender: l.id, Status: cur}, up)
	}
}

func (h *Hub) add(l *link) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.links == nil {
		h.links, h.next = map[string][]*link{}, map[string]int{}
	}
	h.links[l.id.Prefix] = append(h.links[l.id.Prefix], l)
}

func (h *Hub) remove(l *link) {
	h.mu.Lock()
	defer h.mu.Unlock()
	list := h.links[l.id.Prefix]
	for i, x := range list {
		if x == l {
			h.links[l.id.Prefix] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(h.links[l.id.Prefix]) == 0 {
		delete(h.links, l.id.Prefix)
	}
}

// statusOf is the status of another live link of the same extender (one token may run on two agents), or zero.
// The caller must not hold h.mu.
func (h *Hub) statusOf(id string) Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, list := range h.links {
		for _, l := range list {
			if l.id.ID == id {
				return l.status
			}
		}
	}
	return Status{}
}

// Disconnect closes every session of the extender id, for a deleted, disabled or re-keyed extender.
func (h *Hub) Disconnect(id string) {
	h.mu.Lock()
	var victims []*link
	for _, list := range h.links {
		for _, l := range list {
			if l.id.ID == id {
				victims = append(victims, l)
			}
		}
	}
	h.mu.Unlock()
	for _, l := range victims {
		l.sess.Close()
	}
}

// Close ends every session; agents reconnect to whichever gateway serves next.
func (h *Hub) Close() {
	h.mu.Lock()
	var all []*link
	for _, list := range h.links {
		all = append(all, list...)
	}
	h.mu.Unlock()
	for _, l := range all {
		l.sess.Close()
	}
}

// Connected is the number of live sessions serving prefix.
func (h *Hub) Connected(prefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.links[prefix])
}

func (h *Hub) dialTimeout() time.Duration {
	if h.DialTimeout > 0 {
		return h.DialTimeout
	}
	return 10 * time.Second
}

// pick returns the live links of prefix in round-robin order, so each dial starts at the next extender and fails
// over to the others.
func (h *Hub) pick(prefix string) []*link {
	h.mu.Lock()
	defer h.mu.Unlock()
	list := h.links[prefix]
	if len(list) == 0 {
		return nil
	}
	start := h.next[prefix] % len(list)
	h.next[prefix] = start + 1
	out := make([]*link, 0, len(list))
	out = append(out, list[start:]...)
	return append(out, list[:start]...)
}

// Dial opens a connection to addr through an extender serving prefix: one of this hub's own, or else, through the
// Relay, one held by another node of the cluster.
func (h *Hub) Dial(ctx context.Context, prefix, addr string) (net.Conn, error) {
	c, err := h.DialLocal(ctx, prefix, addr)
	var un *UnavailableError
	if h.Relay != nil && errors.As(err, &un) {
		return h.Relay.Dial(ctx, prefix, addr)
	}
	return c, err
}

// DialLocal opens a connection to addr through an extender session of this hub serving prefix. A session that
// fails to open a stream is skipped for the next one; an agent that answers but cannot reach addr ends the dial
// with a DialError, since another agent of the same segment would see the same target.
func (h *Hub) DialLocal(ctx context.Context, prefix, addr string) (net.Conn, error) {
	timeout := h.dialTimeout()
	for _, l := range h.pick(prefix) {
		st, err := l.sess.OpenStream()
		if err != nil {
			h.log().Warn("extender stream failed; trying the next", "extender", l.id.Name, "err", err)
			continue
		}
		deadline := time.Now().Add(timeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		st.SetDeadline(deadline)
		stop := context.AfterFunc(ctx, func() { st.SetDeadline(time.Now()) })
		br := bufio.NewReader(st)
		err = writeDial(st, addr)
		var line string
		if err == nil {
			line, err = readLine(br)
		}
		stop()
		if ctx.Err() != nil {
			st.Close()
			return nil, ctx.Err()
		}
		if err != nil {
			st.Close()
			h.log().Warn("extender stream failed; trying the next", "extender", l.id.Name, "err", err)
			continue
		}
		if rerr := parseReply(line); rerr != nil {
			st.Close()
			return nil, &DialError{Prefix: prefix, Addr: addr, Reason: rerr.Error()}
		}
		st.SetDeadline(time.Time{})
		return &bufConn{Conn: st, r: br}, nil
	}
	return nil, &UnavailableError{Prefix: prefix}
}
