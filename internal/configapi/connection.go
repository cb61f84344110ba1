package configapi

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/gatehouse-dev/gatehouse/internal/connpolicy"
)

// connection is /api/configuration/http/connections: which clients may reach which targets through the proxy,
// and the policies that then apply. Fields follow the reference; those Gatehouse does not act on (server_address
// other than original, source_address, indexing) are validated and kept. access_control makes sessions wait for
// an authorizer's approval (internal/approval) and lets auditors watch them.
type connection struct {
	Name                   string            `json:"name"`
	Active                 bool              `json:"active"`
	Network                network           `json:"network"`
	ServerAddress          serverAddress     `json:"server_address"`
	SourceAddress          sourceAddress     `json:"source_address"`
	WebProxy               webProxy          `json:"web_proxy"`
	TransportSecurity      transportSecurity `json:"transport_security"`
	AccessControl          []accessControl   `json:"access_control"`
	Indexing               indexing          `json:"indexing"`
	RateLimit              rateLimit         `json:"rate_limit"`
	LogAuditTrailDownloads bool              `json:"log_audit_trail_downloads"`
	ChannelDatabaseCleanup cleanup           `json:"channel_database_cleanup"`
	Policies               connPolicies      `json:"policies"`
}

type network struct {
	Clients []string `json:"clients"`
	Targets []string `json:"targets"`
	// Ports lists target ports; an empty list means every port.
	Ports []int `json:"ports"`
}

type serverAddress struct {
	Selection        string       `json:"selection"`
	Address          string       `json:"address,omitempty"`
	Port             int          `json:"port,omitempty"`
	Network          string       `json:"network,omitempty"`
	DNSServer        *string      `json:"dns_server,omitempty"`
	DNSSuffixes      []string     `json:"dns_suffixes,omitempty"`
	Domains          []domainPort `json:"domains,omitempty"`
	ExceptionDomains []domainPort `json:"exception_domains,omitempty"`
	CustomDNS        *string      `json:"custom_dns,omitempty"`
}

type domainPort struct {
	Domain struct {
		Selection string `json:"selection"`
		Value     string `json:"value"`
	} `json:"domain"`
	Port int `json:"port"`
}

type sourceAddress struct {
	Selection string `json:"selection"`
	Address   string `json:"address,omitempty"`
}

type webProxy struct {
	Enabled           bool      `json:"enabled"`
	TransportSecurity tlsChoice `json:"transport_security"`
}

// tlsChoice is web_proxy.transport_security: disabled (plain TCP to the proxy) or tls (an HTTPS proxy).
type tlsChoice struct {
	Selection               string          `json:"selection"`
	HostCertificationMethod *hostCertMethod `json:"host_certification_method,omitempty"`
}

// UnmarshalJSON decodes over zero values, not over the template, so that omitted fields mean their defaults
// for the chosen selection rather than what the built-in default policy happens to hold.
func (t *tlsChoice) UnmarshalJSON(b []byte) error {
	type plain tlsChoice
	var x plain
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	*t = tlsChoice(x)
	return nil
}

// transportSecurity is transport_security: TLS with the client and the target.
type transportSecurity struct {
	Selection               string          `json:"selection"`
	AllowNonEncrypted       bool            `json:"allow_non_encrypted"`
	ServerCertificateCheck  *certCheck      `json:"server_certificate_check"`
	HostCertificationMethod *hostCertMethod `json:"host_certification_method,omitempty"`
}

// UnmarshalJSON decodes over zero values; see tlsChoice.
func (t *transportSecurity) UnmarshalJSON(b []byte) error {
	type plain transportSecurity
	var x plain
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	*t = transportSecurity(x)
	return nil
}

// certCheck is server_certificate_check. Enabled with a trusted_ca list requires the target's certificate to
// chain to that list as well; enabled without one verifies against the system roots and the target's trust
// anchors (the built-in default); disabled adds nothing to the target's own verification.
type certCheck struct {
	Enabled   bool `json:"enabled"`
	TrustedCA *Ref `json:"trusted_ca,omitempty"`
}

// hostCertMethod is host_certification_method: the certificate shown to clients.
type hostCertMethod struct {
	Selection    string `json:"selection"`
	SigningCA    *Ref   `json:"signing_ca"`
	X509Identity *Ref   `json:"x509_identity"`
}

func (m *hostCertMethod) check(c *checker, f string) {
	if m == nil {
		return
	}
	c.oneOf(f+".selection", m.Selection, "generate", "fix")
	switch m.Selection {
	case "generate":
		if m.X509Identity != nil {
			c.fail(f+".x509_identity", "only applies when selection is fix")
		}
	case "fix":
		if m.X509Identity == nil {
			c.fail(f+".x509_identity", "is required when selection is fix")
		}
		if m.SigningCA != nil {
			c.fail(f+".signing_ca", "only applies when selection is generate")
		}
	}
}

func (m *hostCertMethod) refs(f string) []refSlot {
	if m == nil {
		return nil
	}
	var out []refSlot
	if m.SigningCA != nil {
		out = append(out, refSlot{f + ".signing_ca", kindSigningCAs, m.SigningCA})
	}
	if m.X509Identity != nil {
		out = append(out, refSlot{f + ".x509_identity", kindX509Identities, m.X509Identity})
	}
	return out
}

// checkTransport validates transport_security and web_proxy.transport_security.
func (n *connection) checkTransport(c *checker) {
	wp := n.WebProxy.TransportSecurity
	c.oneOf("web_proxy.transport_security.selection", wp.Selection, "disabled", "tls")
	if wp.Selection == "disabled" && wp.HostCertificationMethod != nil {
		c.fail("web_proxy.transport_security.host_certification_method", "only applies when selection is tls")
	}
	wp.HostCertificationMethod.check(c, "web_proxy.transport_security.host_certification_method")
	ts := n.TransportSecurity
	c.oneOf("transport_security.selection", ts.Selection, "disabled", "client-only", "client-server")
	if ts.AllowNonEncrypted && ts.Selection != "client-server" {
		c.fail("transport_security.allow_non_encrypted", "only applies when selection is client-server")
	}
	if cc := ts.ServerCertificateCheck; cc != nil {
		if cc.Enabled && ts.Selection != "client-server" {
			c.fail("transport_security.server_certificate_check", "only applies when selection is client-server (otherwise there is no TLS to the server)")
		}
		if !cc.Enabled && cc.TrustedCA != nil {
			c.fail("transport_security.server_certificate_check.trusted_ca", "only applies when enabled is true")
		}
	}
	if ts.Selection == "disabled" && ts.HostCertificationMethod != nil {
		c.fail("transport_security.host_certification_method", "only applies when TLS with the client is used (client-only or client-server)")
	}
	ts.HostCertificationMethod.check(c, "transport_security.host_certification_method")
}

type accessControl struct {
	Authorizer               string `json:"authorizer"`
	Permission               string `json:"permission"`
	RequireDifferentIP       bool   `json:"require_different_ip"`
	RequireDifferentUsername bool   `json:"require_different_username"`
	Subject                  struct {
		Selection string `json:"selection"`
		Group     string `json:"group,omitempty"`
	} `json:"subject"`
}

// check validates one access_control entry. Authorizer and subject group are Gatehouse role names.
func (a *accessControl) check(c *checker, f string) {
	if strings.TrimSpace(a.Authorizer) == "" {
		c.fail(f+".authorizer", "must name the role (usergroup) that authorizes or audits")
	}
	c.oneOf(f+".permission", a.Permission, approval.PermAudit, approval.PermAuthorize, approval.PermAuditAndAuthorize)
	if a.Permission == approval.PermAudit && (a.RequireDifferentIP || a.RequireDifferentUsername) {
		c.fail(f+".permission", "require_different_ip and require_different_username only apply to authorize and audit_and_authorize")
	}
	c.oneOf(f+".subject.selection", a.Subject.Selection, "everybody", "only")
	switch a.Subject.Selection {
	case "only":
		if strings.TrimSpace(a.Subject.Group) == "" {
			c.fail(f+".subject.group", "is required when selection is only")
		}
	case "everybody":
		if a.Subject.Group != "" {
			c.fail(f+".subject.group", "only applies when selection is only")
		}
	}
}

// rule is the entry as the approval model reads it.
func (a *accessControl) rule() connpolicy.AccessRule {
	r := connpolicy.AccessRule{Authorizer: a.Authorizer, Permission: a.Permission, RequireDifferentIP: a.RequireDifferentIP,
		RequireDifferentUsername: a.RequireDifferentUsername}
	if a.Subject.Selection == "only" {
		r.SubjectGroup = a.Subject.Group
	}
	return r
}

// defaultIndexingPriority is the one indexing.priority Gatehouse accepts.
const defaultIndexingPriority = 3

type indexing struct {
	Enabled  bool `json:"enabled"`
	Policy   *Ref `json:"policy"`
	Priority int  `json:"priority"`
}

type rateLimit struct {
	Enabled bool `json:"enabled"`
	// Value is new connections per minute.
	Value int `json:"value,omitempty"`
}

// connPolicies are the policies a connection refers to. Kinds Gatehouse does not have must be null.
type connPolicies struct {
	ChannelPolicy        *Ref `json:"channel_policy"`
	Settings             *Ref `json:"settings"`
	AuditPolicy          *Ref `json:"audit_policy"`
	LDAPServer           *Ref `json:"ldap_server"`
	BackupPolicy         *Ref `json:"backup_policy"`
	AuthenticationPolicy *Ref `json:"authentication_policy"`
	UsermappingPolicy    *Ref `json:"usermapping_policy"`
	ArchiveCleanupPolicy *Ref `json:"archive_cleanup_policy"`
	AnalyticsPolicy      *Ref `json:"analytics_policy"`
}

func (n *connection) check(c *checker) {
	c.name("name", n.Name)
	if len(n.Network.Clients) == 0 {
		c.fail("network.clients", "must list at least one client address or network")
	}
	for i, s := range n.Network.Clients {
		if _, err := connpolicy.ParseClient(s); err != nil {
			c.fail(fmt.Sprintf("network.clients[%d]", i), "%v", err)
		}
	}
	if len(n.Network.Targets) == 0 {
		c.fail("network.targets", "must list at least one target network or domain")
	}
	for i, s := range n.Network.Targets {
		if _, err := connpolicy.ParseTarget(s); err != nil {
			c.fail(fmt.Sprintf("network.targets[%d]", i), "%v", err)
		}
	}
	for i, p := range n.Network.Ports {
		if p < 1 || p > 65535 {
			c.fail(fmt.Sprintf("network.ports[%d]", i), "must be between 1 and 65535")
		}
	}
	n.checkRouting(c)
	n.checkTransport(c)
	for i, ac := range n.AccessControl {
		ac.check(c, fmt.Sprintf("access_control[%d]", i))
	}
	if n.Indexing.Priority < 0 || n.Indexing.Priority > 5 {
		c.fail("indexing.priority", "must be between 0 and 5")
	} else if n.Indexing.Priority != defaultIndexingPriority {
		// Gatehouse indexes every exchange through one queue in the order recorded; a priority would be stored
		// and mean nothing.
		c.unsupported("indexing.priority", "Gatehouse indexes every connection's exchanges alike; only the default priority 3 is supported")
	}
	if n.Indexing.Policy != nil {
		c.fail("indexing.policy", "Gatehouse has no indexing policies; must be null")
	}
	if n.RateLimit.Enabled && (n.RateLimit.Value < 1 || n.RateLimit.Value > 1_000_000) {
		c.fail("rate_limit.value", "must be between 1 and 1000000 connections per minute when the rate limit is enabled")
	}
	n.ChannelDatabaseCleanup.check(c, "channel_database_cleanup")
	p := n.Policies
	for f, r := range map[string]*Ref{"ldap_server": p.LDAPServer, "backup_policy": p.BackupPolicy, "usermapping_policy": p.UsermappingPolicy,
		"archive_cleanup_policy": p.ArchiveCleanupPolicy, "analytics_policy": p.AnalyticsPolicy} {
		if r != nil {
			c.unsupported("policies."+f, "Gatehouse has no such policies; must be null")
		}
	}
	for f, r := range map[string]*Ref{"channel_policy": p.ChannelPolicy, "settings": p.Settings, "audit_policy": p.AuditPolicy, "authentication_policy": p.AuthenticationPolicy} {
		if r == nil {
			c.fail("policies."+f, "cannot be null")
		}
	}
}

// transportRefs are the references of transport_security and web_proxy: trusted CA list, signing CAs and
// identities. A missing one fails the commit.
func (n *connection) transportRefs() []refSlot {
	var out []refSlot
	if cc := n.TransportSecurity.ServerCertificateCheck; cc != nil && cc.TrustedCA != nil {
		out = append(out, refSlot{"transport_security.server_certificate_check.trusted_ca", kindTrustedCALists, cc.TrustedCA})
	}
	out = append(out, n.TransportSecurity.HostCertificationMethod.refs("transport_security.host_certification_method")...)
	return append(out, n.WebProxy.TransportSecurity.HostCertificationMethod.refs("web_proxy.transport_security.host_certification_method")...)
}
