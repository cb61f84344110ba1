package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/extender"
	"github.com/gatehouse-dev/gatehouse/internal/version"
)

var extendersResource = &resource{
	noun: "extender", path: "/api-proxy/api/v1/extenders", nameField: "name",
	columns: []column{{"ID", "id"}, {"NAME", "name"}, {"PREFIX", "routing_prefix"}, {"ENABLED", "enabled"},
		{"CONNECTED", "status.connected"}, {"ADDRESS", "status.address"}, {"LAST HEARTBEAT", "status.last_heartbeat"}},
}

type extendersCmd struct {
	List        listCmd           `cmd:"" help:"List extenders with their connection status."`
	Get         getCmd            `cmd:"" help:"Show an extender."`
	Create      extenderCreateCmd `cmd:"" help:"Create an extender and print its enrolment token (shown once)."`
	Delete      deleteCmd         `cmd:"" help:"Delete an extender; its agents are disconnected at once."`
	Token       extenderTokenCmd  `cmd:"" help:"Issue a new enrolment token; the old one is refused at once and its agents disconnected."`
	Certificate extenderCertCmd   `cmd:"" help:"Issue a new client certificate to a certificate extender; the old one is revoked at once and its agents disconnected."`
}

// ProvideResource hands the extenders resource to the generic subcommands.
func (*extendersCmd) ProvideResource() *resource { return extendersResource }

// Help says how the pieces fit, which is the point of creating one.
func (*extendersCmd) Help() string {
	return `An extender runs inside a network the gateway cannot reach (` + "`gatehouse extender`" + `) and dials out to the
gateway. Endpoints use it with nat_target_host "extender:PREFIX" (dial the endpoint's own host:port there) or
"extender:PREFIX/host:port".`
}

type extenderCreateCmd struct {
	bodyFlag
	Name     string `help:"Name (required unless in -f)."`
	Prefix   string `help:"Routing prefix endpoints name in nat_target_host (extender:PREFIX)."`
	Disabled bool   `help:"Create it disabled (its token is refused until enabled)."`
	certFiles
	outputFlags
}

// certFiles are where a certificate extender's new certificate and key are written; the key is shown only once.
type certFiles struct {
	Certificate bool   `help:"Authenticate the agent with a client certificate instead of an enrolment token."`
	CertOut     string `name:"cert-out" type:"path" help:"With --certificate: write the certificate here (PEM)."`
	KeyOut      string `name:"key-out" type:"path" help:"With --certificate: write the private key here (PEM, mode 0600)."`
}

type issuedCert struct {
	ID          string         `json:"id"`
	Certificate string         `json:"certificate"`
	PrivateKey  string         `json:"private_key"`
	Info        map[string]any `json:"certificate_info"`
}

// write saves the certificate and key, refusing to overwrite either: losing a key that exists nowhere else is
// not undone.
func (f certFiles) write(g *Globals, c issuedCert) error {
	for _, w := range []struct{ path, data string }{{f.CertOut, c.Certificate}, {f.KeyOut, c.PrivateKey}} {
		file, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("write the new certificate: %w", err)
		}
		_, err = file.WriteString(w.data)
		if cerr := file.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write the new certificate: %w", err)
		}
	}
	fmt.Fprintf(g.Stdout, "id:          %s\ncertificate: %s\nkey:         %s\nfingerprint: %v\n", c.ID, f.CertOut, f.KeyOut, c.Info["fingerprint_sha256"])
	fmt.Fprintln(g.Stderr, "The key exists only in that file now; run the agent with --cert and --key.")
	return nil
}

// check refuses before anything is issued: a certificate whose key cannot be written is lost, and a reissue has
// revoked the old one by then.
func (f certFiles) check() error {
	if !f.Certificate {
		return nil
	}
	if f.CertOut == "" || f.KeyOut == "" {
		return errors.New("--certificate needs --cert-out and --key-out: the key is shown only once")
	}
	for _, p := range []string{f.CertOut, f.KeyOut} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%s exists; the new certificate never overwrites a file", p)
		}
	}
	return nil
}

func (c *extenderCreateCmd) Run(g *Globals) error {
	flags := map[string]any{}
	setIf(flags, "name", c.Name)
	setIf(flags, "routing_prefix", c.Prefix)
	if c.Disabled {
		flags["enabled"] = false
	}
	if err := c.check(); err != nil {
		return err
	}
	if c.Certificate {
		flags["authentication"] = "certificate"
	}
	body, err := c.body(g, flags)
	if err != nil {
		return err
	}
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	if c.Certificate {
		var res issuedCert
		if err := api.call(g.Ctx, http.MethodPost, extendersResource.path, body, &res); err != nil {
			return err
		}
		return c.write(g, res)
	}
	var res struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	if err := api.call(g.Ctx, http.MethodPost, extendersResource.path, body, &res); err != nil {
		return err
	}
	return printToken(g, c.outputFlags, res.ID, res.Token)
}

type extenderTokenCmd struct {
	ID string `arg:"" name:"id-or-name" help:"Id or name of the extender."`
	outputFlags
}

func (c *extenderTokenCmd) Run(g *Globals, r *resource) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	id, err := r.resolve(g.Ctx, api, c.ID)
	if err != nil {
		return err
	}
	var res struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	if err := api.call(g.Ctx, http.MethodPost, r.item(id)+"/token", nil, &res); err != nil {
		return err
	}
	return printToken(g, c.outputFlags, res.ID, res.Token)
}

type extenderCertCmd struct {
	ID      string `arg:"" name:"id-or-name" help:"Id or name of the extender."`
	CertOut string `name:"cert-out" required:"" type:"path" help:"Write the certificate here (PEM)."`
	KeyOut  string `name:"key-out" required:"" type:"path" help:"Write the private key here (PEM, mode 0600)."`
}

func (c *extenderCertCmd) Run(g *Globals, r *resource) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	id, err := r.resolve(g.Ctx, api, c.ID)
	if err != nil {
		return err
	}
	files := certFiles{Certificate: true, CertOut: c.CertOut, KeyOut: c.KeyOut}
	if err := files.check(); err != nil {
		return err
	}
	var res issuedCert
	if err := api.call(g.Ctx, http.MethodPost, r.item(id)+"/certificate", nil, &res); err != nil {
		return err
	}
	return files.write(g, res)
}

func printToken(g *Globals, out outputFlags, id, token string) error {
	if out.json() {
		return printJSON(g.Stdout, map[string]string{"id": id, "token": token})
	}
	fmt.Fprintf(g.Stdout, "id:    %s\ntoken: %s\n", id, token)
	fmt.Fprintln(g.Stderr, "The token is shown only now; run the agent with GATEHOUSE_EXTENDER_TOKEN set to it.")
	return nil
}

// extenderCmd is the agent itself.
type extenderCmd struct {
	Gateway   string   `required:"" env:"GATEHOUSE_EXTENDER_GATEWAY" help:"The gateway's API URL, https://HOST:PORT."`
	Token     string   `env:"GATEHOUSE_EXTENDER_TOKEN" xor:"credential" help:"Enrolment token (prefer the env variable: flags show in ps)."`
	Cert      string   `name:"cert" env:"GATEHOUSE_EXTENDER_CERT" xor:"credential" and:"keypair" type:"path" help:"PEM file with the extender's client certificate (instead of a token)."`
	Key       string   `name:"key" env:"GATEHOUSE_EXTENDER_KEY" and:"keypair" type:"path" help:"PEM file with the client certificate's private key."`
	CA        string   `name:"ca" env:"GATEHOUSE_EXTENDER_CA" type:"path" help:"PEM file with the CA that issued the gateway's API certificate (default: system roots)."`
	Allow     []string `env:"GATEHOUSE_EXTENDER_ALLOW" help:"Only dial these: CIDR, IP or host, optionally :port; repeat or separate with commas (default: any)."`
	LogLevel  string   `default:"info" enum:"debug,info,warn,error" help:"Log level."`
	LogFormat string   `default:"text" enum:"text,json" help:"Log format."`
}

func (c *extenderCmd) Run(g *Globals) error {
	if c.Token == "" && c.Cert == "" {
		return errors.New("--token (or GATEHOUSE_EXTENDER_TOKEN) or --cert and --key are required")
	}
	allow, err := extender.ParseAllowList(c.Allow)
	if err != nil {
		return fmt.Errorf("--allow: %w", err)
	}
	var roots *x509.CertPool
	if c.CA != "" {
		pem, err := os.ReadFile(c.CA)
		if err != nil {
			return fmt.Errorf("--ca: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return errors.New("--ca: no PEM certificate in " + c.CA)
		}
	}
	a := &extender.Agent{Gateway: strings.TrimRight(c.Gateway, "/"), Token: c.Token, RootCAs: roots, Allow: allow,
		Version: version.Version(), Log: newLogger(g, c.LogLevel, c.LogFormat)}
	if c.Cert != "" {
		pair, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return fmt.Errorf("--cert/--key: %w", err)
		}
		a.Certificate = &pair
	}
	return a.Run(g.Ctx)
}
