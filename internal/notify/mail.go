package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"strconv"
	"strings"
	"time"
)

// mail sends one message about ev to every recipient of m.
func (n *Notifier) mail(ctx context.Context, m SMTP, ev Event) error {
	addr := net.JoinHostPort(m.Host, strconv.Itoa(m.Port))
	tlsCfg := &tls.Config{ServerName: m.Host, MinVersion: tls.VersionTLS12}
	if m.CACertificate != "" {
		pool, err := certPool(m.CACertificate)
		if err != nil {
			return err
		}
		tlsCfg.RootCAs = pool
	}
	d := net.Dialer{}
	var conn net.Conn
	var err error
	if m.TLSMode == TLSImplicit {
		conn, err = (&tls.Dialer{NetDialer: &d, Config: tlsCfg}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c, err := smtp.NewClient(conn, m.Host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("gatehouse"); err != nil {
		return err
	}
	if m.TLSMode == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("server does not offer STARTTLS, which tls_mode starttls requires")
		}
		if err := c.StartTLS(tlsCfg); err != nil {
			return err
		}
	}
	if m.Username != "" {
		// smtp.PlainAuth itself refuses to send the password without TLS to anything but a loopback server.
		if err := c.Auth(smtp.PlainAuth("", m.Username, m.Password, m.Host)); err != nil {
			return fmt.Errorf("authenticate: %w", err)
		}
	}
	if err := c.Mail(m.From); err != nil {
		return err
	}
	for _, to := range m.To {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("recipient %s: %w", to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(message(m, ev)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// message renders the e-mail. Values come from users (names, comments): line breaks are flattened in headers so
// they cannot add headers, and the body is plain text.
func message(m SMTP, ev Event) []byte {
	what := ev.Target
	if ev.Role != "" {
		what = "role " + ev.Role
	}
	subject := fmt.Sprintf("[Gatehouse] %s %s: %s for %s", kindTitle(ev.Source), ev.Kind, ev.Requester, what)
	var b strings.Builder
	header := func(k, v string) { b.WriteString(k + ": " + oneLine(v) + "\r\n") }
	header("From", m.From)
	header("To", strings.Join(m.To, ", "))
	header("Subject", subject)
	header("Date", ev.Time.Format(time.RFC1123Z))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("X-Gatehouse-Event", ev.Kind)
	header("X-Gatehouse-Request", ev.RequestID)
	b.WriteString("\r\n")
	line := func(k, v string) {
		if v != "" {
			v = strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(v)
			b.WriteString(k + ": " + strings.ReplaceAll(v, "\n", "\r\n  ") + "\r\n")
		}
	}
	line("Event", ev.Kind)
	line("Request", ev.RequestID)
	line("Requester", ev.Requester)
	line("From address", ev.ClientAddress)
	line("Target", ev.Target)
	line("Role", ev.Role)
	line("First request", ev.RequestLine)
	line("Decided by", ev.Decider)
	line("Comment", ev.Comment)
	if !ev.Until.IsZero() {
		line("Until", ev.Until.UTC().Format(time.RFC3339))
	}
	line("Time", ev.Time.UTC().Format(time.RFC3339))
	return []byte(b.String())
}

func kindTitle(source string) string {
	if source == "workflow" {
		return "access request"
	}
	return "session approval"
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}

func certPool(pemText string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(pemText)) {
		return nil, errors.New("holds no PEM certificate")
	}
	return pool, nil
}
