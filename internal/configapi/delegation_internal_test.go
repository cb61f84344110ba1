package configapi

import "testing"

func TestSteerField(t *testing.T) {
	base := func() *connection {
		c := defaultConnection()
		c.ServerAddress = serverAddress{Selection: "fix", Address: "10.0.0.1", Port: 8080}
		c.Network = network{Clients: []string{"0.0.0.0/0"}, Targets: []string{"10.0.0.0/8"}}
		return c
	}
	open := func(c *connection) *connection { c.ServerAddress = serverAddress{Selection: "original"}; return c }
	for _, tc := range []struct {
		name       string
		prev, next *connection
		want       string
	}{
		{"new ordinary policy", nil, open(base()), ""},
		{"new routed policy", nil, base(), "server_address"},
		{"new plain policy", nil, func() *connection { c := open(base()); c.TransportSecurity.Selection = "client-only"; return c }(), "transport_security.selection"},
		{"route unchanged, name changed", base(), func() *connection { c := base(); c.Name = "renamed"; return c }(), ""},
		{"route moved", base(), func() *connection { c := base(); c.ServerAddress.Port = 9; return c }(), "server_address"},
		{"route taken away", base(), open(base()), ""},
		{"ordinary policy routed", open(base()), base(), "server_address"},
		{"targets widened", base(), func() *connection { c := base(); c.Network.Targets = []string{"0.0.0.0/0"}; return c }(), "network"},
		{"switched on", func() *connection { c := base(); c.Active = false; return c }(), base(), "active"},
		{"switched off", base(), func() *connection { c := base(); c.Active = false; return c }(), ""},
		{"plain turned on", open(base()), func() *connection { c := open(base()); c.TransportSecurity.Selection = "client-only"; return c }(), "transport_security.selection"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := steerField(tc.prev, tc.next); got != tc.want {
				t.Errorf("steerField = %q, want %q", got, tc.want)
			}
		})
	}
}
