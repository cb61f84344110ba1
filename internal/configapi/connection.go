package configapi

import (
	"fmt"
	"net/netip"

	"github.com/gatehouse-dev/gatehouse/internal/connpolicy"
)

// connection is /api/configuration/http/connections: which clients may reach which targets through the proxy,
// and the policies that then apply. Fields follow the reference; those Gatehouse does not act on (server_address
// other than original, source_address, indexing, access_control) are validated and kept.
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

type tlsChoice struct {
	Selection               string         `json:"selection"`
	HostCertificationMethod map[string]any `json:"host_certification_method,omitempty"`
}

type transportSecurity struct {
	Selection               string         `json:"selection"`
	AllowNonEncrypted       bool           `json:"allow_non_encrypted,omitempty"`
	ServerCertificateCheck  *certCheck     `json:"server_certificate_check,omitempty"`
	HostCertificationMethod map[string]any `json:"host_certification_method,omitempty"`
}

type certCheck struct {
	Enabled   bool   `json:"enabled"`
	TrustedCA string `json:"trusted_ca,omitempty"`
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
	sa := n.ServerAddress
	c.oneOf("server_address.selection", sa.Selection, "original", "nat", "fix", "inband")
	switch sa.Selection {
	case "fix":
		if _, err := netip.ParseAddr(sa.Address); err != nil && connpolicy.ParseHostName(sa.Address) != nil {
			c.fail("server_address.address", "must be an IP address or host name")
		}
		if sa.Port < 1 || sa.Port > 65535 {
			c.fail("server_address.port", "must be between 1 and 65535")
		}
	case "nat":
		if _, err := netip.ParsePrefix(sa.Network); err != nil {
			c.fail("server_address.network", "must be a CIDR prefix")
		}
	case "inband":
		if len(sa.Domains) == 0 {
			c.fail("server_address.domains", "must list at least one domain")
		}
	}
	for i, d := range append(append([]domainPort{}, sa.Domains...), sa.ExceptionDomains...) {
		f := fmt.Sprintf("server_address.domains[%d]", i)
		if i >= len(sa.Domains) {
			f = fmt.Sprintf("server_address.exception_domains[%d]", i-len(sa.Domains))
		}
		c.oneOf(f+".domain.selection", d.Domain.Selection, "address", "domain")
		if d.Domain.Value == "" {
			c.fail(f+".domain.value", "must not be empty")
		}
		if d.Port < 0 || d.Port > 65535 {
			c.fail(f+".port", "must be between 1 and 65535")
		}
	}
	c.oneOf("source_address.selection", n.SourceAddress.Selection, "box_address", "original", "fix")
	if n.SourceAddress.Selection == "fix" {
		if _, err := netip.ParseAddr(n.SourceAddress.Address); err != nil {
			c.fail("source_address.address", "must be an IP address")
		}
	}
	c.oneOf("web_proxy.transport_security.selection", n.WebProxy.TransportSecurity.Selection, "disabled", "tls")
	c.oneOf("transport_security.selection", n.TransportSecurity.Selection, "disabled", "client-only", "client-server")
	for i, a := range n.AccessControl {
		f := fmt.Sprintf("access_control[%d]", i)
		c.name(f+".authorizer", a.Authorizer)
		c.oneOf(f+".permission", a.Permission, "audit", "authorize", "audit_and_authorize")
		c.oneOf(f+".subject.selection", a.Subject.Selection, "everybody", "only")
		if a.Subject.Selection == "only" && a.Subject.Group == "" {
			c.fail(f+".subject.group", "is required when selection is only")
		}
	}
	if n.Indexing.Priority < 0 || n.Indexing.Priority > 5 {
		c.fail("indexing.priority", "must be between 0 and 5")
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
			c.fail("policies."+f, "Gatehouse has no such policies; must be null")
		}
	}
	for f, r := range map[string]*Ref{"channel_policy": p.ChannelPolicy, "settings": p.Settings, "audit_policy": p.AuditPolicy, "authentication_policy": p.AuthenticationPolicy} {
		if r == nil {
			c.fail("policies."+f, "cannot be null")
		}
	}
}
