package configapi

import (
	"context"

	"github.com/gatehouse-dev/gatehouse/internal/connpolicy"
)

// compileTransport fills in what a connection policy says about transport security, the web proxy and routing.
func (s *Service) compileTransport(ctx context.Context, v *configView, c *connection, d *connpolicy.Decision) error {
	ts := c.TransportSecurity
	d.Transport = connpolicy.Transport{Mode: connpolicy.TransportMode(ts.Selection), AllowPlain: ts.AllowNonEncrypted}
	if cc := ts.ServerCertificateCheck; cc != nil && cc.Enabled && cc.TrustedCA != nil {
		pool, src, err := trustedPool(v, cc.TrustedCA)
		if err != nil {
			return err
		}
		d.Transport.TrustedCAs, d.Transport.TrustedCAsPEM = pool, src
	}
	var err error
	if ts.Selection != "disabled" {
		if d.Transport.Certs, err = s.certSource(v, ts.HostCertificationMethod); err != nil {
			return err
		}
	}
	wp := c.WebProxy
	d.WebProxy = connpolicy.WebProxy{Enabled: wp.Enabled, TLS: wp.TransportSecurity.Selection == "tls"}
	if d.WebProxy.TLS {
		if d.WebProxy.Certs, err = s.certSource(v, wp.TransportSecurity.HostCertificationMethod); err != nil {
			return err
		}
	}
	return compileRouting(c, d)
}
