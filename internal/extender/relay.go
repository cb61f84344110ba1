package extender

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/hashicorp/yamux"
)

// The nodes of a cluster relay dials to each other's extenders. A node that holds no session for a prefix asks a
// node that does (the registry in the database says which) over one yamux session per pair of nodes, opened as an
// HTTP upgrade on the other node's API listener. Both ends prove they hold the cluster's relay key (derived from
// the master key) with an HMAC over the TLS connection's exported keying material, so a proof is worthless on any
// other connection and a node that answers without the key is dropped before anything is sent through it. Only
// the TLS bytes of the target connection cross the relay: authorization, credentials and the target's TLS stay on
// the node the request entered.

// RelayPath is where the nodes of a cluster open relay sessions on each other's API listener.
const RelayPath = "/api-proxy/api/v1/extenders/relay"

// RelayProtocol is the Upgrade token of a relay session.
const RelayProtocol = "gatehouse-extender-relay/1"

const (
	nodeHeader  = "X-Gatehouse-Node"
	proofHeader = "X-Gatehouse-Relay-Proof"
	// ekmLabel names the exporter (RFC 8446 section 7.5) the proofs are bound to.
	ekmLabel = "EXPORTER-gatehouse-extender-relay"
	// relayLimiterName is what refused relay proofs count under in the login limiter.
	relayLimiterName = "(extender relay)"
)

// relayProof is the proof one end gives: HMAC-SHA256 under the cluster's relay key over the end's role, the
// calling node's id and the connection's keying material.
func relayProof(key []byte, cs *tls.ConnectionState, role, node string) (string, error) {
	if cs == nil || cs.Version < tls.VersionTLS13 {
		return "", errors.New("relay needs TLS 1.3")
	}
	ekm, err := cs.ExportKeyingMaterial(ekmLabel, nil, 32)
	if err != nil {
		return "", fmt.Errorf("relay keying material: %w", err)
	}
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s\x00%s\x00", role, node)
	m.Write(ekm)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)), nil
}

func proofMatches(key []byte, cs *tls.ConnectionState, role, node, got string) bool {
	want, err := relayProof(key, cs, role, node)
	return err == nil && hmac.Equal([]byte(want), []byte(got))
}

// writeRelayDial asks the far node to dial addr through one of its extenders of prefix.
func writeRelayDial(w io.Writer, prefix, addr string) error {
	_, err := io.WriteString(w, "RELAY "+prefix+" "+addr+"\n")
	return err
}

// parseRelayDial reads a relay stream header: RELAY prefix host:port, with the same checks as an agent's DIAL.
func parseRelayDial(line string) (prefix, addr string, err error) {
	rest, ok := strings.CutPrefix(line, "RELAY ")
	prefix, hostport, ok2 := strings.Cut(rest, " ")
	if !ok || !ok2 || prefix == "" || len(prefix) > 64 || strings.ContainsAny(prefix, " \t\r/") {
		return "", "", fmt.Errorf("extender: relay header %q is not RELAY prefix host:port", truncate(line))
	}
	addr, err = parseDial("DIAL " + hostport)
	return prefix, addr, err
}

// Relay replies: "OK", "ERR unavailable" (the node holds no session of the prefix any more) or "ERR dial <reason>"
// (its agent could not reach the address).
const replyUnavailable = "unavailable"

// RelayServer answers other nodes' relay sessions by dialling through the local sessions of Hub. Hub and Key are
// required.
type RelayServer struct {
	Hub *Hub
	// Key is the cluster's relay key; every node derives the same from the master key.
	Key []byte
	// Limiter throttles refused proofs per source address; nil means no throttling.
	Limiter auth.LoginLimiter
	// Log receives refusals and failures; nil discards.
	Log *slog.Logger

	mu       sync.Mutex
	sessions map[*yamux.Session]struct{}
	closed   bool
}

func (s *RelayServer) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// ServeHTTP authenticates a calling node and serves its relay session until it ends.
func (s *RelayServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || !strings.EqualFold(r.Header.Get("Upgrade"), RelayProtocol) || r.ProtoMajor != 1 {
		http.Error(w, "relay needs GET over HTTP/1.1 with Upgrade: "+RelayProtocol, http.StatusBadRequest)
		return
	}
	source := r.RemoteAddr
	if host, _, err := net.SplitHostPort(source); err == nil {
		source = host
	}
	if s.Limiter != nil {
		if d := s.Limiter.Check(r.Context(), source, relayLimiterName); d.RetryAfter > 0 {
			http.Error(w, "too many refused relay proofs", http.StatusTooManyRequests)
			return
		} else if d.Wait(r.Context()) != nil {
			return
		}
	}
	node := r.Header.Get(nodeHeader)
	if node == "" || len(node) > 64 || !proofMatches(s.Key, r.TLS, "client", node, r.Header.Get(proofHeader)) {
		if s.Limiter != nil {
			s.Limiter.Failed(r.Context(), source, relayLimiterName)
		}
		s.log().Warn("extender relay refused: no valid proof of the cluster key", "remote", r.RemoteAddr, "node", truncate(node))
		http.Error(w, "relay refused", http.StatusUnauthorized)
		return
	}
	answer, err := relayProof(s.Key, r.TLS, "server", node)
	if err != nil {
		http.Error(w, "relay refused", http.StatusUnauthorized)
		return
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		s.log().Error("extender relay hijack", "err", err)
		return
	}
	conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+RelayProtocol+
		"\r\n"+proofHeader+": "+answer+"\r\n\r\n"); err != nil {
		conn.Close()
		return
	}
	sess, err := yamux.Server(&headerJoiner{Conn: &bufConn{Conn: conn, r: rw.Reader}}, relayYamuxConfig())
	if err != nil {
		conn.Close()
		return
	}
	if !s.track(sess) {
		sess.Close()
		return
	}
	defer s.untrack(sess)
	s.log().Info("extender relay session from a node", "node", node, "remote", r.RemoteAddr)
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		go s.handle(st)
	}
}

// track keeps sess for Close; after Close it refuses, so a session accepted during shutdown does not outlive it.
func (s *RelayServer) track(sess *yamux.Session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.sessions == nil {
		s.sessions = map[*yamux.Session]struct{}{}
	}
	s.sessions[sess] = struct{}{}
	return true
}

func (s *RelayServer) untrack(sess *yamux.Session) {
	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
	sess.Close()
}

// Close ends every relay session, as the node stops.
func (s *RelayServer) Close() {
	s.mu.Lock()
	s.closed = true
	var all []*yamux.Session
	for sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()
	for _, sess := range all {
		sess.Close()
	}
}

func (s *RelayServer) handle(st *yamux.Stream) {
	defer st.Close()
	timeout := s.Hub.dialTimeout()
	st.SetDeadline(time.Now().Add(timeout))
	br := bufio.NewReader(st)
	line, err := readLine(br)
	if err != nil {
		return
	}
	prefix, addr, err := parseRelayDial(line)
	if err != nil {
		writeReply(st, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	target, err := s.Hub.DialLocal(ctx, prefix, addr)
	cancel()
	var de *DialError
	switch {
	case errors.As(err, &de):
		writeReply(st, errors.New("dial "+de.Reason))
		return
	case err != nil:
		writeReply(st, errors.New(replyUnavailable))
		return
	}
	defer target.Close()
	if writeReply(st, nil) != nil {
		return
	}
	st.SetDeadline(time.Time{})
	pipe(&bufConn{Conn: st, r: br}, target)
}

func relayYamuxConfig() *yamux.Config {
	cfg := sessionConfig()
	// A peer that vanished without closing (a crashed node, a cut network) ends the session within a few
	// intervals, so the next dial reconnects or gives up.
	cfg.KeepAliveInterval = 10 * time.Second
	cfg.ConnectionWriteTimeout = 10 * time.Second
	return cfg
}

// Owner is another node holding a live session of a prefix, with the address of its API listener.
type Owner struct {
	Node, Address string
}

// RelayClient dials through extenders held by other nodes. Self, Key and Owners are required.
type RelayClient struct {
	// Self is this node's id, which the far node logs.
	Self string
	// Key is the cluster's relay key.
	Key []byte
	// RootCAs verifies the other nodes' API certificates (the cluster's CA); nil means the system roots.
	RootCAs *x509.CertPool
	// Owners lists the other nodes that hold a live session of prefix.
	Owners func(ctx context.Context, prefix string) ([]Owner, error)
	// DialTimeout bounds connecting to a node; zero means 10 seconds.
	DialTimeout time.Duration
	// ReplyTimeout bounds the far node's answer to one relayed dial, which includes its agent's dial of the
	// target; zero means DialTimeout plus 10 seconds (the hub's default dial timeout).
	ReplyTimeout time.Duration
	// Log receives failures; nil discards.
	Log *slog.Logger

	mu    sync.Mutex
	peers map[string]*peer // by node id
	next  int
}

var _ Dialer = (*RelayClient)(nil)

type peer struct {
	mu   sync.Mutex
	addr string
	sess *yamux.Session
}

func (c *RelayClient) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

func (c *RelayClient) timeout() time.Duration {
	if c.DialTimeout > 0 {
		return c.DialTimeout
	}
	return 10 * time.Second
}

// Dial opens a connection to addr through an extender of prefix on another node, trying the owners in turn (each
// dial starts at the next, so the nodes share the load). A node that does not answer, or no longer holds a
// session, is skipped; none left is an UnavailableError naming the prefix.
func (c *RelayClient) Dial(ctx context.Context, prefix, addr string) (net.Conn, error) {
	owners, err := c.Owners(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("extender relay: find the nodes holding %q: %w", prefix, err)
	}
	if len(owners) == 0 {
		return nil, &UnavailableError{Prefix: prefix}
	}
	c.mu.Lock()
	start := c.next % len(owners)
	c.next++
	c.mu.Unlock()
	for i := range owners {
		o := owners[(start+i)%len(owners)]
		conn, err := c.dialVia(ctx, o, prefix, addr)
		var de *DialError
		switch {
		case err == nil:
			return conn, nil
		case errors.As(err, &de), ctx.Err() != nil:
			return nil, err
		}
		c.log().Warn("extender relay through a node failed; trying the next", "node", o.Node, "address", o.Address, "err", err)
	}
	return nil, &UnavailableError{Prefix: prefix}
}

func (c *RelayClient) dialVia(ctx context.Context, o Owner, prefix, addr string) (net.Conn, error) {
	sess, err := c.session(ctx, o)
	if err != nil {
		return nil, err
	}
	st, err := sess.OpenStream()
	if err != nil {
		sess.Close()
		return nil, err
	}
	reply := c.ReplyTimeout
	if reply <= 0 {
		reply = c.timeout() + 10*time.Second
	}
	deadline := time.Now().Add(reply)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	st.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { st.SetDeadline(time.Now()) })
	br := bufio.NewReader(st)
	err = writeRelayDial(st, prefix, addr)
	var line string
	if err == nil {
		line, err = readLine(br)
	}
	stop()
	if err != nil {
		// Only this stream is given up: the session carries other live connections, and a node that is really
		// gone ends it through the keepalive, after which the next dial connects anew.
		st.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if rerr := parseReply(line); rerr != nil {
		st.Close()
		if reason, ok := strings.CutPrefix(rerr.Error(), "dial "); ok {
			return nil, &DialError{Prefix: prefix, Addr: addr, Reason: reason}
		}
		return nil, fmt.Errorf("node %s: %w", o.Node, rerr)
	}
	st.SetDeadline(time.Time{})
	return &bufConn{Conn: st, r: br}, nil
}

// session returns the live relay session to o, connecting one if there is none.
func (c *RelayClient) session(ctx context.Context, o Owner) (*yamux.Session, error) {
	c.mu.Lock()
	if c.peers == nil {
		c.peers = map[string]*peer{}
	}
	p := c.peers[o.Node]
	if p == nil {
		p = &peer{}
		c.peers[o.Node] = p
	}
	c.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sess != nil && !p.sess.IsClosed() && p.addr == o.Address {
		return p.sess, nil
	}
	if p.sess != nil {
		p.sess.Close()
		p.sess = nil
	}
	sess, err := c.connect(ctx, o)
	if err != nil {
		return nil, err
	}
	p.sess, p.addr = sess, o.Address
	return sess, nil
}

// connect opens a relay session to o's API listener: TLS 1.3 verified against RootCAs, then the upgrade in which
// both ends prove the cluster key.
func (c *RelayClient) connect(ctx context.Context, o Owner) (*yamux.Session, error) {
	host, _, err := net.SplitHostPort(o.Address)
	if err != nil {
		return nil, fmt.Errorf("node %s address %q: %w", o.Node, o.Address, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", o.Address)
	if err != nil {
		return nil, fmt.Errorf("dial node %s: %w", o.Node, err)
	}
	// Batched like the agent's connection: a frame's header and records leave in one socket write.
	conn := newBatchedTLS(raw, &tls.Config{RootCAs: c.RootCAs, ServerName: host, NextProtos: []string{"http/1.1"},
		MinVersion: tls.VersionTLS13})
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("dial node %s: %w", o.Node, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	cs := conn.ConnectionState()
	proof, err := relayProof(c.Key, &cs, "client", c.Self)
	if err != nil {
		conn.Close()
		return nil, err
	}
	req, _ := http.NewRequest(http.MethodGet, "https://"+o.Address+RelayPath, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", RelayProtocol)
	req.Header.Set(nodeHeader, c.Self)
	req.Header.Set(proofHeader, proof)
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("relay request to node %s: %w", o.Node, err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("relay answer from node %s: %w", o.Node, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		conn.Close()
		return nil, fmt.Errorf("relay answer from node %s: HTTP %d: %s", o.Node, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if !proofMatches(c.Key, &cs, "server", c.Self, resp.Header.Get(proofHeader)) {
		conn.Close()
		return nil, fmt.Errorf("node %s did not prove the cluster key; not relaying through it", o.Node)
	}
	if !stop() {
		conn.Close()
		return nil, ctx.Err()
	}
	conn.SetDeadline(time.Time{})
	return yamux.Client(&bufConn{Conn: conn, r: br}, relayYamuxConfig())
}

// Close ends every relay session this client opened.
func (c *RelayClient) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.peers {
		p.mu.Lock()
		if p.sess != nil {
			p.sess.Close()
		}
		p.mu.Unlock()
	}
}
