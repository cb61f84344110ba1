package configapi

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/gatehouse-dev/gatehouse/internal/connpolicy"
)

// checkRouting validates server_address and source_address: each field only where its selection uses it, so
// that nothing is kept without effect.
func (n *connection) checkRouting(c *checker) {
	sa := n.ServerAddress
	c.oneOf("server_address.selection", sa.Selection, "original", "nat", "fix", "inband")
	only := func(field string, set bool, sel string) {
		if set && sa.Selection != sel {
			c.fail("server_address."+field, "only applies when selection is %s", sel)
		}
	}
	only("address", sa.Address != "", "fix")
	only("port", sa.Port != 0, "fix")
	only("network", sa.Network != "", "nat")
	only("dns_server", sa.DNSServer != nil && *sa.DNSServer != "", "inband")
	only("dns_suffixes", len(sa.DNSSuffixes) > 0, "inband")
	only("domains", len(sa.Domains) > 0, "inband")
	only("exception_domains", len(sa.ExceptionDomains) > 0, "inband")
	if sa.CustomDNS != nil && *sa.CustomDNS != "" {
		c.unsupported("server_address.custom_dns", "Gatehouse does not support custom_dns; use dns_server with selection inband")
	}
	switch sa.Selection {
	case "fix":
		if _, err := netip.ParseAddr(sa.Address); err != nil && connpolicy.ParseHostName(sa.Address) != nil {
			c.fail("server_address.address", "must be an IP address or host name")
		}
		if sa.Port < 1 || sa.Port > 65535 {
			c.fail("server_address.port", "must be between 1 and 65535")
		}
	case "nat":
		if p, err := netip.ParsePrefix(sa.Network); err != nil || p.Masked() != p {
			c.fail("server_address.network", "must be a CIDR prefix without host bits")
		}
	case "inband":
		if len(sa.Domains) == 0 {
			c.fail("server_address.domains", "must list at least one domain")
		}
		if sa.DNSServer != nil && *sa.DNSServer != "" {
			if _, err := dnsServerAddr(*sa.DNSServer); err != nil {
				c.fail("server_address.dns_server", "%v", err)
			}
		}
		for i, s := range sa.DNSSuffixes {
			if connpolicy.ParseHostName(s) != nil {
				c.fail(fmt.Sprintf("server_address.dns_suffixes[%d]", i), "must be a domain name")
			}
		}
	}
	for i, d := range sa.Domains {
		d.check(c, fmt.Sprintf("server_address.domains[%d]", i))
	}
	for i, d := range sa.ExceptionDomains {
		d.check(c, fmt.Sprintf("server_address.exception_domains[%d]", i))
	}
	src := n.SourceAddress
	c.oneOf("source_address.selection", src.Selection, "box_address", "original", "fix")
	switch src.Selection {
	case "original":
		c.unsupported("source_address.selection", "original (connecting from the client's address) needs transparent sockets, which Gatehouse does not use; choose box_address or fix")
	case "fix":
		if a, err := netip.ParseAddr(src.Address); err != nil || a.Zone() != "" {
			c.fail("source_address.address", "must be an IP address")
		}
	default:
		if src.Address != "" {
			c.fail("source_address.address", "only applies when selection is fix")
		}
	}
}

func (d domainPort) check(c *checker, f string) {
	c.oneOf(f+".domain.selection", d.Domain.Selection, "address", "domain")
	if _, err := d.compile(); err != nil {
		c.fail(f+".domain.value", "%v", err)
	}
	if d.Port < 0 || d.Port > 65535 {
		c.fail(f+".port", "must be between 1 and 65535, or 0 for every port")
	}
}

func (d domainPort) compile() (connpolicy.DomainPort, error) {
	var t connpolicy.Target
	var err error
	if d.Domain.Selection == "address" {
		t, err = connpolicy.ParseAddressTarget(d.Domain.Value)
	} else {
		t, err = connpolicy.ParseTarget(d.Domain.Value)
	}
	return connpolicy.DomainPort{Target: t, Port: d.Port}, err
}

// dnsServerAddr turns dns_server (an IP address, optionally with a port) into host:port.
func dnsServerAddr(s string) (string, error) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return net.JoinHostPort(a.String(), "53"), nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Port() != 0 {
		return ap.String(), nil
	}
	return "", fmt.Errorf("must be an IP address or address:port of a DNS server")
}

// compileRouting fills in server_address and source_address.
func compileRouting(c *connection, d *connpolicy.Decision) error {
	sa := c.ServerAddress
	d.Route.Mode = connpolicy.RouteMode(sa.Selection)
	switch sa.Selection {
	case "fix":
		d.Route.Fix = net.JoinHostPort(sa.Address, strconv.Itoa(sa.Port))
	case "nat":
		p, err := netip.ParsePrefix(sa.Network)
		if err != nil {
			return fmt.Errorf("server_address.network: %w", err)
		}
		d.Route.NAT = p
	case "inband":
		if sa.DNSServer != nil && *sa.DNSServer != "" {
			addr, err := dnsServerAddr(*sa.DNSServer)
			if err != nil {
				return fmt.Errorf("server_address.dns_server: %w", err)
			}
			d.Route.DNSServer = addr
		}
		d.Route.DNSSuffixes = append([]string(nil), sa.DNSSuffixes...)
		for _, x := range sa.Domains {
			dp, err := x.compile()
			if err != nil {
				return err
			}
			d.Route.Domains = append(d.Route.Domains, dp)
		}
		for _, x := range sa.ExceptionDomains {
			dp, err := x.compile()
			if err != nil {
				return err
			}
			d.Route.Exceptions = append(d.Route.Exceptions, dp)
		}
	}
	if c.SourceAddress.Selection == "fix" {
		a, err := netip.ParseAddr(c.SourceAddress.Address)
		if err != nil {
			return fmt.Errorf("source_address.address: %w", err)
		}
		d.SourceAddress = a.Unmap()
	}
	return nil
}
