package auditexport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
)

// SyslogOptions configure the syslog destination.
type SyslogOptions struct {
	// Address is tcp+tls://host:port. Plain TCP or UDP is refused: audit events name users and addresses.
	Address string
	// CAFile is a PEM bundle the collector's certificate must chain to; empty means the system roots.
	CAFile string
	// Hostname is the HOSTNAME field; empty means os.Hostname().
	Hostname string
}

// ParseSyslogAddress checks a --audit-syslog value and returns host:port.
func ParseSyslogAddress(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL: %w", s, err)
	}
	if u.Scheme != "tcp+tls" {
		return "", fmt.Errorf("%q: the scheme must be tcp+tls (syslog over TLS, RFC 5425); plain tcp and udp are not supported", s)
	}
	if u.Port() == "" || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("%q: want tcp+tls://HOST:PORT", s)
	}
	return u.Host, nil
}

// syslogSink writes octet-counted RFC 5424 messages over one TLS connection, redialled after a failure.
type syslogSink struct {
	addr     string
	tls      *tls.Config
	hostname string
	procID   string
	conn     *tls.Conn
}

func newSyslogSink(o SyslogOptions) (*syslogSink, error) {
	addr, err := ParseSyslogAddress(o.Address)
	if err != nil {
		return nil, fmt.Errorf("--audit-syslog: %w", err)
	}
	host, _, _ := net.SplitHostPort(addr)
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		b, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--audit-syslog-ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--audit-syslog-ca: %s holds no PEM certificate", o.CAFile)
		}
	}
	hn := o.Hostname
	if hn == "" {
		hn, _ = os.Hostname()
	}
	return &syslogSink{addr: addr, tls: tc, hostname: hn, procID: strconv.Itoa(os.Getpid())}, nil
}

func (s *syslogSink) name() string { return "syslog" }

func (s *syslogSink) send(ctx context.Context, e model.AuditEvent) error {
	msg, err := FormatSyslog(e, s.hostname, s.procID)
	if err != nil {
		return permanent("format: %v", err)
	}
	if s.conn != nil && !peerOpen(s.conn) {
		// The collector closed the connection (a restart, an idle timeout). TCP would accept one more write and
		// lose it, so redial first.
		s.conn.Close()
		s.conn = nil
	}
	if s.conn == nil {
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}, Config: s.tls}
		c, err := d.DialContext(ctx, "tcp", s.addr)
		if err != nil {
			return fmt.Errorf("dial %s: %w", s.addr, err)
		}
		s.conn = c.(*tls.Conn)
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.conn.Write(frame(msg)); err != nil {
		s.conn.Close()
		s.conn = nil
		return fmt.Errorf("write to %s: %w", s.addr, err)
	}
	return nil
}

// peerOpen reports whether the collector has not closed c: a collector sends nothing, so a read that times out at
// once means open, and EOF or any other error means closed. A timed-out read leaves a TLS connection usable.
func peerOpen(c *tls.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
	var b [1]byte
	_, err := c.Read(b[:])
	_ = c.SetReadDeadline(time.Time{})
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *syslogSink) close() error {
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// frame is RFC 6587 octet counting (the only framing RFC 5425 allows): the message length in decimal, a space,
// the message.
func frame(msg []byte) []byte {
	return append([]byte(strconv.Itoa(len(msg))+" "), msg...)
}

// Syslog fields. Facility 13 is "log audit" (RFC 5424 table 1); 32473 is the private enterprise number RFC 5612
// reserves for documentation, used until Gatehouse has its own.
const (
	facilityLogAudit = 13
	sdID             = "gatehouse@32473"
	appName          = "gatehouse"
)

// FormatSyslog renders e as one RFC 5424 message:
//
//	<PRI>1 TIMESTAMP HOSTNAME gatehouse PROCID ACTION [gatehouse@32473 id=".." action=".." ...] {json}
//
// Severity is notice for a success and warning for a failure. The structured data carries the fields a SIEM
// indexes (id, action, actor, actor_id, object_type, object_id, source_address, outcome); the MSG part is the
// whole event as JSON, diff included, with no BOM.
func FormatSyslog(e model.AuditEvent, hostname, procID string) ([]byte, error) {
	sev := 5
	if e.Outcome != "success" {
		sev = 4
	}
	body, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<%d>1 %s %s %s %s %s [%s", facilityLogAudit*8+sev, e.Time.UTC().Format("2006-01-02T15:04:05.000000Z"),
		header(hostname, 255), appName, header(procID, 128), header(e.Action, 32), sdID)
	for _, p := range []struct{ k, v string }{
		{"id", strconv.FormatInt(e.ID, 10)}, {"action", e.Action}, {"actor", e.Actor}, {"actor_id", e.ActorID},
		{"object_type", e.ObjectType}, {"object_id", e.ObjectID}, {"source_address", e.SourceAddress}, {"outcome", e.Outcome},
	} {
		if p.v == "" {
			continue
		}
		fmt.Fprintf(&b, " %s=\"%s\"", p.k, sdEscape(p.v))
	}
	b.WriteString("] ")
	b.Write(body)
	return []byte(b.String()), nil
}

// header makes v a valid header field: printable US-ASCII without spaces, at most n bytes, "-" when empty.
func header(v string, n int) string {
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v) && len(out) < n; i++ {
		c := v[i]
		if c > 32 && c < 127 {
			out = append(out, c)
		} else {
			out = append(out, '_')
		}
	}
	if len(out) == 0 {
		return "-"
	}
	return string(out)
}

// sdEscape escapes a PARAM-VALUE: '"', '\' and ']' take a backslash (RFC 5424 section 6.3.3). Control characters
// become '?', so a crafted name cannot end the record early on collectors that split on newlines anyway.
func sdEscape(v string) string {
	var b strings.Builder
	for _, r := range v {
		switch {
		case r == '"' || r == '\\' || r == ']':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 32 || r == 127:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
