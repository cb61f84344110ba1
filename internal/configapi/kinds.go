package configapi

import (
	"github.com/gatehouse-dev/gatehouse/internal/retention"

	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/connpolicy"
)

// Ref is a reference to another configuration object. Clients may send the reference's {"key","meta"} object or
// just the key as a string; it is always answered as {"key","meta":{"href"}}. A nil *Ref is JSON null.
type Ref struct {
	Key  string
	Href string
}

// UnmarshalJSON accepts "key" or {"key":"...","meta":{...}}.
func (r *Ref) UnmarshalJSON(b []byte) error {
	var key string
	if err := json.Unmarshal(b, &key); err == nil {
		r.Key = key
		return nil
	}
	var obj struct {
		Key  string          `json:"key"`
		Meta json.RawMessage `json:"meta"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return fmt.Errorf("a reference is a key or a {\"key\",\"meta\"} object")
	}
	r.Key = obj.Key
	return nil
}

// MarshalJSON writes the reference's {"key","meta":{"href"}} form.
func (r Ref) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"key": r.Key, "meta": map[string]string{"href": r.Href}})
}

// checker collects the first validation failure with the path of its field.
type checker struct{ err *Error }

func (c *checker) fail(field, format string, args ...any) {
	if c.err == nil {
		c.err = semantic(field, fmt.Sprintf(format, args...))
	}
}

// unsupported refuses a value Gatehouse cannot act on with NOT_SUPPORTED.
func (c *checker) unsupported(field, format string, args ...any) {
	if c.err == nil {
		c.err = notSupported(field, fmt.Sprintf(format, args...))
	}
}

func (c *checker) name(field, v string) {
	if strings.TrimSpace(v) == "" {
		c.fail(field, "must not be empty")
	} else if len(v) > 200 {
		c.fail(field, "must be at most 200 characters")
	}
}

func (c *checker) oneOf(field, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		c.fail(field, "must be one of %s", strings.Join(allowed, ", "))
	}
}

// userlist is /api/configuration/policies/userlists.
type userlist struct {
	Name   string   `json:"name"`
	Allow  string   `json:"allow"`
	Except []string `json:"except"`
}

func (u *userlist) check(c *checker) {
	c.name("name", u.Name)
	c.oneOf("allow", u.Allow, "all_users", "no_user")
	for i, e := range u.Except {
		if strings.TrimSpace(e) == "" {
			c.fail(fmt.Sprintf("except[%d]", i), "must not be empty")
		}
	}
}

// compile turns the list into the evaluator's form: all_users is a blacklist, no_user a whitelist.
func (u *userlist) compile() *connpolicy.Userlist {
	return &connpolicy.Userlist{AllowAll: u.Allow == "all_users", Except: slices.Clone(u.Except)}
}

// channelPolicy is /api/configuration/http/channel_policies: a channel (http or websocket) is allowed when any
// rule lists it and admits the user.
type channelPolicy struct {
	Name  string        `json:"name"`
	Rules []channelRule `json:"rules"`
}

type channelRule struct {
	Channels   []string   `json:"channels"`
	AllowedFor allowedFor `json:"allowed_for"`
}

// allowedFor restricts a rule: gateway_groups are Gatehouse role names (empty means every user); userlists, all
// of which must admit the username, refine it (empty means no list applies).
type allowedFor struct {
	GatewayGroups []string `json:"gateway_groups"`
	RemoteGroups  []string `json:"remote_groups"`
	Userlists     []*Ref   `json:"userlists"`
}

func (p *channelPolicy) check(c *checker) {
	c.name("name", p.Name)
	for i, r := range p.Rules {
		f := fmt.Sprintf("rules[%d]", i)
		if len(r.Channels) == 0 {
			c.fail(f+".channels", "must list at least one channel")
		}
		for j, ch := range r.Channels {
			c.oneOf(fmt.Sprintf("%s.channels[%d]", f, j), ch, "http", "websocket")
		}
		for j, g := range r.AllowedFor.GatewayGroups {
			if strings.TrimSpace(g) == "" {
				c.fail(fmt.Sprintf("%s.allowed_for.gateway_groups[%d]", f, j), "must not be empty")
			}
		}
		if len(r.AllowedFor.RemoteGroups) > 0 {
			c.fail(f+".allowed_for.remote_groups", "Gatehouse has no server-side groups; leave this list empty")
		}
		for j, u := range r.AllowedFor.Userlists {
			if u == nil {
				c.fail(fmt.Sprintf("%s.allowed_for.userlists[%d]", f, j), "must not be null")
			}
		}
	}
}

// settingsPolicy is /api/configuration/http/settings_policies. Timeouts are seconds; session_timeout 0 means no
// limit on a session's lifetime.
type settingsPolicy struct {
	Name                string `json:"name"`
	IdleTimeout         int    `json:"idle_timeout"`
	SessionTimeout      int    `json:"session_timeout"`
	ClientTLSMinVersion string `json:"client_tls_min_version"`
	ServerTLSMinVersion string `json:"server_tls_min_version"`
}

var tlsVersions = []string{"TLSv1_2", "TLSv1_3"}

func (p *settingsPolicy) check(c *checker) {
	c.name("name", p.Name)
	if p.IdleTimeout < 1 || p.IdleTimeout > 7*24*3600 {
		c.fail("idle_timeout", "must be between 1 and 604800 seconds")
	}
	if p.SessionTimeout < 0 || p.SessionTimeout > 30*24*3600 {
		c.fail("session_timeout", "must be between 0 (no limit) and 2592000 seconds")
	}
	c.oneOf("client_tls_min_version", p.ClientTLSMinVersion, tlsVersions...)
	c.oneOf("server_tls_min_version", p.ServerTLSMinVersion, tlsVersions...)
}

// authenticationPolicy is /api/configuration/http/authentication_policies. Gatehouse authenticates proxy users by
// their proxy credential; the policy documents that and leaves room for other methods.
type authenticationPolicy struct {
	Name                  string    `json:"name"`
	GatewayAuthentication selection `json:"gateway_authentication"`
}

type selection struct {
	Selection string `json:"selection"`
}

func (p *authenticationPolicy) check(c *checker) {
	c.name("name", p.Name)
	c.oneOf("gateway_authentication.selection", p.GatewayAuthentication.Selection, "proxy_credential")
}

// httpOptions is the singleton /api/configuration/http/options: global options of HTTP connections.
type httpOptions struct {
	Service struct {
		// Enabled false refuses every proxy connection, whatever the connection policies say.
		Enabled bool `json:"enabled"`
	} `json:"service"`
	ChannelDatabaseCleanup cleanup `json:"channel_database_cleanup"`
}

type cleanup struct {
	Enabled bool `json:"enabled"`
	Days    int  `json:"days"`
}

func (o *httpOptions) check(c *checker) {
	o.ChannelDatabaseCleanup.check(c, "channel_database_cleanup")
}

func (o *cleanup) check(c *checker, f string) {
	if o.Days < 0 || (o.Enabled && o.Days < 1) {
		c.fail(f+".days", "must be at least 1 when cleanup is enabled")
	} else if o.Days > retention.MaxDays {
		c.fail(f+".days", "must be at most %d (100 years)", retention.MaxDays)
	}
}

// auditPolicy is /api/configuration/policies/audit_policies: whether sessions are recorded, how much of each
// body, and which headers (beyond the built-in credential headers) are redacted.
type auditPolicy struct {
	Name          string   `json:"name"`
	Record        bool     `json:"record"`
	BodyLimit     int      `json:"body_limit"`
	RedactHeaders []string `json:"redact_headers"`
}

func (p *auditPolicy) check(c *checker) {
	c.name("name", p.Name)
	if p.BodyLimit < 0 || p.BodyLimit > 64<<20 {
		c.fail("body_limit", "must be between 0 and 67108864 bytes")
	}
	for i, h := range p.RedactHeaders {
		if h == "" || strings.ContainsAny(h, " :\t\r\n") {
			c.fail(fmt.Sprintf("redact_headers[%d]", i), "must be a header name")
		}
	}
}

// aaaSettings is the singleton /api/configuration/aaa/settings.
type aaaSettings struct {
	X509 struct {
		// AuthenticationCA is the PEM of the CA(s) client certificates must chain to; null disables x509 login.
		AuthenticationCA *string `json:"authentication_ca"`
	} `json:"x509"`
}

func (a *aaaSettings) check(c *checker) {
	if _, err := a.caPool(); err != nil {
		c.fail("x509.authentication_ca", "%v", err)
	}
}

// caPool parses the authentication CA; nil when none is configured.
func (a *aaaSettings) caPool() (*x509.CertPool, error) {
	if a.X509.AuthenticationCA == nil || strings.TrimSpace(*a.X509.AuthenticationCA) == "" {
		return nil, nil
	}
	pool := x509.NewCertPool()
	rest := []byte(*a.X509.AuthenticationCA)
	n := 0
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("must hold only CERTIFICATE PEM blocks, found %s", blk.Type)
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %v", n, err)
		}
		if !cert.IsCA {
			return nil, fmt.Errorf("certificate %d (%s) is not a CA", n, cert.Subject.CommonName)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("must be PEM-encoded CA certificates")
	}
	return pool, nil
}
