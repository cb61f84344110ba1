// Package extender carries the gateway's upstream connections into network segments it cannot route to. An agent
// inside the segment dials out to the gateway's API listener over TLS, authenticates with its enrolment token in an
// HTTP upgrade, and then serves one yamux session on that connection: every stream the gateway opens names a
// host:port, the agent dials it and pipes bytes. Authorization, credential injection, TLS to the target and
// recording all stay on the gateway; the agent only sees the TLS bytes it forwards.
package extender

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/hashicorp/yamux"
)

// Protocol is the Upgrade token of the connect request and of its 101 answer.
const Protocol = "gatehouse-extender/1"

// ConnectPath is where agents connect on the gateway's API listener.
const ConnectPath = "/api-proxy/api/v1/extenders/connect"

// VersionHeader carries the agent's version in the connect request.
const VersionHeader = "X-Gatehouse-Extender-Version"

// maxLine bounds a stream header or reply line: a host name is at most 253 bytes, so 512 leaves room.
const maxLine = 512

var errLineTooLong = errors.New("extender: header line too long")

// writeDial writes the stream header that asks the agent to dial addr.
func writeDial(w io.Writer, addr string) error {
	_, err := io.WriteString(w, "DIAL "+addr+"\n")
	return err
}

// readLine reads one '\n'-terminated line of at most maxLine bytes, without the newline.
func readLine(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for b.Len() <= maxLine {
		c, err := r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) && b.Len() > 0 {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		if c == '\n' {
			return b.String(), nil
		}
		b.WriteByte(c)
	}
	return "", errLineTooLong
}

// parseDial reads a stream header and returns the host:port it names. It refuses anything but one DIAL line with a
// host and a numeric port, so a confused or hostile gateway cannot make the agent guess.
func parseDial(line string) (string, error) {
	addr, ok := strings.CutPrefix(line, "DIAL ")
	if !ok {
		return "", fmt.Errorf("extender: stream header %q is not DIAL host:port", truncate(line))
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || strings.ContainsAny(addr, " \t\r") {
		return "", fmt.Errorf("extender: stream header %q: address must be host:port", truncate(line))
	}
	if !validPort(port) {
		return "", fmt.Errorf("extender: stream header %q: port must be a number from 1 to 65535", truncate(line))
	}
	return net.JoinHostPort(host, port), nil
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n >= 1 && n <= 65535
}

// writeReply answers a DIAL: OK, or ERR with a one-line reason.
func writeReply(w io.Writer, err error) error {
	if err == nil {
		_, werr := io.WriteString(w, "OK\n")
		return werr
	}
	msg := strings.NewReplacer("\n", " ", "\r", " ").Replace(err.Error())
	_, werr := io.WriteString(w, "ERR "+truncate(msg)+"\n")
	return werr
}

// parseReply turns a reply line into nil (OK) or the agent's reason.
func parseReply(line string) error {
	if line == "OK" {
		return nil
	}
	if msg, ok := strings.CutPrefix(line, "ERR "); ok {
		return errors.New(msg)
	}
	return fmt.Errorf("extender: bad reply %q", truncate(line))
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// bufConn is a net.Conn whose reads drain a bufio.Reader first, so bytes read ahead while parsing a header or an
// HTTP answer are not lost.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// streamWindow is the most a stream may have in flight before its receiver reads: yamux's default of 256 KiB
// stalls the sender for a window update every 128 KiB, a round trip through both ends' schedulers.
const streamWindow = 1 << 20

// sessionConfig is the yamux configuration every session (agent, hub, relay) starts from.
func sessionConfig() *yamux.Config {
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	cfg.MaxStreamWindowSize = streamWindow
	return cfg
}
