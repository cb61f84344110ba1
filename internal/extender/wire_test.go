package extender

import (
	"bufio"
	"strings"
	"testing"
)

func TestParseDial(t *testing.T) {
	for _, c := range []struct {
		line, want string
		ok         bool
	}{
		{"DIAL 127.0.0.1:443", "127.0.0.1:443", true},
		{"DIAL api.internal:8443", "api.internal:8443", true},
		{"DIAL [::1]:443", "[::1]:443", true},
		{"DIAL 127.0.0.1", "", false},
		{"DIAL :443", "", false},
		{"DIAL host:0", "", false},
		{"DIAL host:65536", "", false},
		{"DIAL host:+80", "", false},
		{"DIAL host:80 extra", "", false},
		{"dial host:80", "", false},
		{"CONNECT host:80", "", false},
	} {
		got, err := parseDial(c.line)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseDial(%q) = %q, %v; want %q ok=%v", c.line, got, err, c.want, c.ok)
		}
	}
}

func TestReadLineBounded(t *testing.T) {
	if _, err := readLine(bufio.NewReader(strings.NewReader(strings.Repeat("x", maxLine+10) + "\n"))); err != errLineTooLong {
		t.Fatalf("long line: %v", err)
	}
	if l, err := readLine(bufio.NewReader(strings.NewReader("OK\nrest"))); err != nil || l != "OK" {
		t.Fatalf("readLine: %q %v", l, err)
	}
}

// FuzzParseDial checks that whatever a header says, an accepted address is a host:port that round-trips and
// names a port from 1 to 65535.
func FuzzParseDial(f *testing.F) {
	for _, s := range []string{"DIAL 127.0.0.1:443", "DIAL [::1]:1", "DIAL a:65535", "DIAL a:65536", "DIAL ", "DIAL [::1", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		addr, err := parseDial(line)
		if err != nil {
			return
		}
		again, err := parseDial("DIAL " + addr)
		if err != nil || again != addr {
			t.Fatalf("%q -> %q does not round-trip: %q %v", line, addr, again, err)
		}
	})
}

func TestReplyRoundTrip(t *testing.T) {
	var b strings.Builder
	writeReply(&b, nil)
	writeReply(&b, errString("dial failed\nsecond line"))
	r := bufio.NewReader(strings.NewReader(b.String()))
	l1, _ := readLine(r)
	l2, _ := readLine(r)
	if parseReply(l1) != nil {
		t.Fatalf("OK reply: %q", l1)
	}
	if err := parseReply(l2); err == nil || err.Error() != "dial failed second line" {
		t.Fatalf("ERR reply: %q -> %v", l2, err)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestAllowList(t *testing.T) {
	l, err := ParseAllowList([]string{"10.0.0.0/8", "192.168.1.5:443", "api.internal", "[::1]:8443", "172.16.0.0/12:443"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"10.1.2.3:80", true},
		{"11.0.0.1:80", false},
		{"192.168.1.5:443", true},
		{"192.168.1.5:444", false},
		{"API.internal.:9000", true},
		{"evil.internal:80", false},
		{"[::1]:8443", true},
		{"[::1]:8444", false},
		{"172.16.5.5:443", true},
		{"172.16.5.5:80", false},
		{"not-an-address", false},
		// An IPv4-mapped IPv6 address is the IPv4 address it maps.
		{"[::ffff:10.1.2.3]:80", true},
		{"[::ffff:11.0.0.1]:80", false},
	} {
		if got := l.Allows(c.addr); got != c.want {
			t.Errorf("Allows(%q) = %v, want %v", c.addr, got, c.want)
		}
	}
	if !(AllowList{}).Allows("anything:1") {
		t.Error("the zero AllowList must allow every address")
	}
	for _, bad := range []string{"10.0.0.0/8:0", "host:99999", "*.internal", "a b"} {
		if _, err := ParseAllowList([]string{bad}); err == nil {
			t.Errorf("ParseAllowList(%q) accepted", bad)
		}
	}
}
