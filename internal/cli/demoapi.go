package cli

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/demoapi"
)

// demoAPICmd is `gatehouse demo-api`: the walk-through's stand-in for an API of your own.
type demoAPICmd struct {
	Listen string `default:"127.0.0.1:9443" help:"Address to serve HTTPS on."`
	Name   string `default:"demo.gatehouse.test" help:"Host name in the certificate; register the target under this name and let nat_target_host point Gatehouse at --listen."`
	Token  string `default:"the-real-upstream-token" help:"The bearer token the API requires (the target credential Gatehouse injects)."`
	CAFile string `name:"ca-file" default:"demo-api-ca.pem" type:"path" help:"Where to write the PEM of the CA that signed the certificate (the target's tls_trust_anchors)."`
}

func (c *demoAPICmd) Run(g *Globals) error {
	cert, caPEM, err := demoapi.Certificates(c.Name)
	if err != nil {
		return err
	}
	if err := os.WriteFile(c.CAFile, caPEM, 0o644); err != nil {
		return fmt.Errorf("--ca-file: %w", err)
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", c.Listen, err)
	}
	srv := &http.Server{Handler: demoapi.Handler(c.Token), ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	fmt.Fprintf(g.Stdout, "demo API for https://%s:%s on %s (CA in %s)\n", c.Name, portOf(ln), ln.Addr(), c.CAFile)
	go func() {
		<-g.Ctx.Done()
		srv.Close()
	}()
	if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func portOf(ln net.Listener) string {
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}
