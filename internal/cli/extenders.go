package cli

import (
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
	List   listCmd           `cmd:"" help:"List extenders with their connection status."`
	Get    getCmd            `cmd:"" help:"Show an extender."`
	Create extenderCreateCmd `cmd:"" help:"Create an extender and print its enrolment token (shown once)."`
	Delete deleteCmd         `cmd:"" help:"Delete an extender; its agents are disconnected at once."`
	Token  extenderTokenCmd  `cmd:"" help:"Issue a new enrolment token; the old one is refused at once and its agents disconnected."`
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
	outputFlags
}

func (c *extenderCreateCmd) Run(g *Globals) error {
	flags := map[string]any{}
	setIf(flags, "name", c.Name)
	setIf(flags, "routing_prefix", c.Prefix)
	if c.Disabled {
		flags["enabled"] = false
	}
	body, err := c.body(g, flags)
	if err != nil {
		return err
	}
	api, err := newAPIClient()
	if err != nil {
		return err
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
	Token     string   `required:"" env:"GATEHOUSE_EXTENDER_TOKEN" help:"Enrolment token (prefer the env variable: flags show in ps)."`
	CA        string   `name:"ca" env:"GATEHOUSE_EXTENDER_CA" type:"path" help:"PEM file with the CA that issued the gateway's API certificate (default: system roots)."`
	Allow     []string `env:"GATEHOUSE_EXTENDER_ALLOW" help:"Only dial these: CIDR, IP or host, optionally :port; repeat or separate with commas (default: any)."`
	LogLevel  string   `default:"info" enum:"debug,info,warn,error" help:"Log level."`
	LogFormat string   `default:"text" enum:"text,json" help:"Log format."`
}

func (c *extenderCmd) Run(g *Globals) error {
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
	return a.Run(g.Ctx)
}
