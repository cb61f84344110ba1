package policy

import "testing"

func TestParseAuthority(t *testing.T) {
	tests := []struct {
		in   string
		want HostPort
		err  bool
	}{
		{in: "example.com", want: HostPort{Host: "example.com"}},
		{in: "Example.COM", want: HostPort{Host: "example.com"}},
		{in: "example.com.", want: HostPort{Host: "example.com"}},
		{in: "example.com:443", want: HostPort{Host: "example.com", Port: 443}},
		{in: "EXAMPLE.com.:8443", want: HostPort{Host: "example.com", Port: 8443}},
		{in: "a-b.c1.example", want: HostPort{Host: "a-b.c1.example"}},
		{in: "localhost:1", want: HostPort{Host: "localhost", Port: 1}},
		{in: "x:65535", want: HostPort{Host: "x", Port: 65535}},
		{in: "10.0.0.1", want: HostPort{Host: "10.0.0.1"}},
		{in: "10.0.0.1:80", want: HostPort{Host: "10.0.0.1", Port: 80}},
		{in: "[::1]", want: HostPort{Host: "::1"}},
		{in: "[::1]:8443", want: HostPort{Host: "::1", Port: 8443}},
		{in: "[2001:DB8:0:0::1]:443", want: HostPort{Host: "2001:db8::1", Port: 443}},
		{in: "[::ffff:10.0.0.1]:80", want: HostPort{Host: "10.0.0.1", Port: 80}},

		{in: "", err: true},
		{in: ":443", err: true},
		{in: "example.com:", err: true},
		{in: "example.com:0", err: true},
		{in: "example.com:65536", err: true},
		{in: "example.com:0443", err: true},
		{in: "example.com:+443", err: true},
		{in: "example.com:44a", err: true},
		{in: "example.com:443:1", err: true},
		{in: "::1", err: true},
		{in: "[::1", err: true},
		{in: "[::1]x", err: true},
		{in: "[::1]:", err: true},
		{in: "[fe80::1%eth0]:443", err: true},
		{in: "[10.0.0.1]", err: true},
		{in: "[example.com]", err: true},
		{in: "*.example.com", err: true},
		{in: "a..b", err: true},
		{in: ".example.com", err: true},
		{in: "example.com..", err: true},
		{in: "-a.example.com", err: true},
		{in: "a-.example.com", err: true},
		{in: "a_b.example.com", err: true},
		{in: "exa mple.com", err: true},
		{in: "exämple.com", err: true},
		{in: "127.1", err: true},
		{in: "0x7f.0.0.1", err: true},
		{in: "010.0.0.1", err: true},
		{in: "256.0.0.1", err: true},
		{in: "1.2.3.4.5", err: true},
		{in: "user@example.com", err: true},
		{in: "example.com/x", err: true},
		{in: string(make([]byte, 64)) + ".com", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseAuthority(tt.in)
			if tt.err {
				if err == nil {
					t.Fatalf("ParseAuthority(%q) = %+v, want error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAuthority(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseAuthority(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			again, err := ParseAuthority(got.String())
			if err != nil || again != got {
				t.Errorf("ParseAuthority(%q) = %+v, %v; String does not round-trip", got.String(), again, err)
			}
		})
	}
}

func TestHostLabelLimits(t *testing.T) {
	label63 := "a23456789012345678901234567890123456789012345678901234567890123"
	if _, err := ParseAuthority(label63 + ".com"); err != nil {
		t.Errorf("63-byte label refused: %v", err)
	}
	if _, err := ParseAuthority(label63 + "4.com"); err == nil {
		t.Error("64-byte label accepted")
	}
	long := label63 + "." + label63 + "." + label63 + "." + label63 // 255 bytes
	if _, err := ParseAuthority(long); err == nil {
		t.Error("255-byte name accepted")
	}
}

func TestHostMatches(t *testing.T) {
	tests := []struct {
		rule, req string
		want      bool
	}{
		{"example.com", "example.com", true},
		{"example.com", "www.example.com", false},
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "a.b.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "aexample.com", false},
		{"*.example.com", "a.example.com.evil", false},
		{"10.0.0.1", "10.0.0.1", true},
		{"10.0.0.1", "10.0.0.2", false},
	}
	for _, tt := range tests {
		t.Run(tt.rule+" "+tt.req, func(t *testing.T) {
			if got := hostMatches(tt.rule, tt.req); got != tt.want {
				t.Errorf("hostMatches(%q, %q) = %v, want %v", tt.rule, tt.req, got, tt.want)
			}
		})
	}
}

func TestDefaultPort(t *testing.T) {
	for scheme, want := range map[string]uint16{"http": 80, "HTTPS": 443, "ftp": 0, "": 0} {
		if got := DefaultPort(scheme); got != want {
			t.Errorf("DefaultPort(%q) = %d, want %d", scheme, got, want)
		}
	}
}

// TestHostPortAppendTo holds AppendTo to String's form.
func TestHostPortAppendTo(t *testing.T) {
	for _, hp := range []HostPort{{Host: "api.example.com", Port: 443}, {Host: "127.0.0.1"}, {Host: "::1", Port: 8443}, {Host: "2001:db8::1"}} {
		if got, want := string(hp.AppendTo(nil)), hp.String(); got != want {
			t.Errorf("AppendTo(%+v) = %q, String = %q", hp, got, want)
		}
	}
}
