package cli

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/connector"
)

type connectCmd struct {
	Target      string `arg:"" placeholder:"TARGET" help:"API target to connect to, by name or id."`
	Listen      string `default:"127.0.0.1:0" placeholder:"HOST:PORT" help:"Local address to listen on (port 0 picks a free one). Loopback only unless --allow-remote."`
	AllowRemote bool   `name:"allow-remote" help:"Allow a non-loopback --listen address. Whoever reaches it uses your credential unauthenticated."`
	Credential  string `placeholder:"ID-OR-NAME" help:"Your proxy credential for the target (default: your only enabled credential for it). Its secret is read with your login."`
	TokenFile   string `name:"token-file" type:"path" placeholder:"PATH" help:"File holding the credential's secret (instead of --credential; GATEHOUSE_TOKEN works too)."`
	Host        string `placeholder:"HOST[:PORT]" help:"Target host to send requests to (default: the target's first non-wildcard endpoint host)."`
	Scheme      string `enum:",https,http" default:"" help:"Scheme of the target host: https or http (default: from the endpoint, https when it allows both)."`
	Proxy       string `placeholder:"URL" help:"Gateway proxy address (default: the first address GET /api-proxy/api/v1/conf lists)."`
	CAFile      string `name:"ca-file" type:"path" placeholder:"PATH" help:"PEM file with the gateway's proxy CA (default: fetched from /api-proxy/api/v1/conf with your login)."`
}

// Help shows how the command is meant to be used.
func (*connectCmd) Help() string {
	return `Opens a local plain-HTTP listener that forwards every request to the target through the Gatehouse proxy
with your proxy credential, verifying the gateway's CA itself. Local clients (a browser, Postman, Node's fetch,
Go on loopback) then need no proxy setting, CA or token:

  gatehouse connect my-api --listen 127.0.0.1:8080
  curl http://127.0.0.1:8080/v1/things

The secret is --token-file's, or GATEHOUSE_TOKEN's when no --credential is given; otherwise the secret of
--credential (or of your only enabled credential for the target) is read with your login. Without a login, give --token-file (or GATEHOUSE_TOKEN),
--host, --proxy and --ca-file.`
}

func (c *connectCmd) Run(g *Globals) error {
	if err := connector.CheckListen(c.Listen, c.AllowRemote); err != nil {
		return err
	}
	secret, err := c.secret()
	if err != nil {
		return err
	}
	// The management API is needed for whatever was not given on the command line.
	var api *apiClient
	if secret == "" || c.Host == "" || c.Proxy == "" || c.CAFile == "" {
		if api, err = newAPIClient(); err != nil {
			return err
		}
	}
	var targetID, targetName = c.Target, c.Target
	var endpoints []targetEndpoint
	if api != nil {
		var tg struct {
			ID        string           `json:"id"`
			Name      string           `json:"name"`
			Endpoints []targetEndpoint `json:"authorized_endpoints"`
		}
		id, raw, err := targetsResource.fetch(g.Ctx, api, c.Target)
		switch {
		case err == nil:
			if err := json.Unmarshal(raw, &tg); err != nil {
				return fmt.Errorf("decode target: %w", err)
			}
			targetID, targetName, endpoints = id, tg.Name, tg.Endpoints
		case isForbidden(err) && c.Host != "":
			// Users need not be allowed to read targets; with --host the target is matched against their
			// credentials' target (id or name) and the gateway decides.
		case isForbidden(err):
			return fmt.Errorf("you may not read target %q, so its hosts are unknown here (%w); pass --host with the target host", c.Target, err)
		default:
			return err
		}
	}
	upstream, err := c.upstream(endpoints)
	if err != nil {
		return err
	}
	if secret == "" {
		if secret, err = c.fetchSecret(g, api, targetID, targetName); err != nil {
			return err
		}
	}
	proxyURL, roots, err := c.gateway(g, api)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(g.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	conn, err := connector.New(connector.Connector{Upstream: upstream, Proxy: proxyURL, Secret: secret, Roots: roots, Log: log,
		AllowRemote: c.AllowRemote})
	if err != nil {
		return err
	}
	if err := conn.Check(g.Ctx); err != nil {
		var re *connector.RefusedError
		if errors.As(err, &re) && (re.Status == http.StatusProxyAuthRequired || re.Status == http.StatusForbidden) {
			return fmt.Errorf("%w\n(the credential may be wrong, revoked, disabled, expired, or not allowed from this address)", err)
		}
		return err
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", c.Listen, err)
	}
	fmt.Fprintf(g.Stdout, "Forwarding http://%s to %s (target %q) through %s\n", ln.Addr(), upstream, targetName, proxyURL.Host)
	fmt.Fprintf(g.Stdout, "Send plain HTTP requests to http://%s/ with no proxy, CA or token; Ctrl-C stops.\n", ln.Addr())
	return conn.Serve(g.Ctx, ln)
}

type targetEndpoint struct {
	Host      string   `json:"host"`
	Protocols []string `json:"protocols"`
}

// secret is the credential secret given directly: --token-file, then GATEHOUSE_TOKEN; "" when neither is set.
func (c *connectCmd) secret() (string, error) {
	if c.TokenFile != "" {
		if c.Credential != "" {
			return "", errors.New("--token-file and --credential both name a credential; give one")
		}
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
		return "", fmt.Errorf("--token-file %s is empty", c.TokenFile)
	}
	if c.Credential == "" {
		return strings.TrimSpace(os.Getenv("GATEHOUSE_TOKEN")), nil
	}
	return "", nil
}

// upstream picks the target host: --host, or the first endpoint host without a wildcard.
func (c *connectCmd) upstream(endpoints []targetEndpoint) (*url.URL, error) {
	host, scheme := c.Host, c.Scheme
	if host == "" {
		for _, e := range endpoints {
			if strings.ContainsAny(e.Host, "*?") {
				continue
			}
			host = e.Host
			if scheme == "" {
				scheme = "https"
				if len(e.Protocols) > 0 && !containsString(e.Protocols, "https") {
					scheme = "http"
				}
			}
			break
		}
		if host == "" {
			return nil, fmt.Errorf("target %q has no endpoint with a plain host name; pass --host", c.Target)
		}
	}
	if scheme == "" {
		scheme = "https"
	}
	if strings.Contains(host, "/") {
		return nil, fmt.Errorf("--host %q: give HOST or HOST:PORT, not a URL", host)
	}
	return &url.URL{Scheme: scheme, Host: host}, nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// fetchSecret reads the secret of --credential, or of the user's only enabled credential for the target.
func (c *connectCmd) fetchSecret(g *Globals, api *apiClient, targetID, targetName string) (string, error) {
	creds := credentialsResource("current")
	id := c.Credential
	if id != "" {
		cid, raw, err := creds.fetch(g.Ctx, api, id)
		if err != nil {
			return "", err
		}
		var cr struct {
			Target struct{ ID, Name string } `json:"target"`
		}
		if json.Unmarshal(raw, &cr) == nil && cr.Target.ID != "" && cr.Target.ID != targetID && cr.Target.Name != targetName {
			return "", fmt.Errorf("credential %q is for another target, not %q", c.Credential, targetName)
		}
		id = cid
	} else {
		items, err := api.listAll(g.Ctx, creds.path, nil)
		if err != nil {
			return "", err
		}
		var names []string
		for _, it := range items {
			var cr struct {
				ID      string                    `json:"id"`
				Name    string                    `json:"name"`
				Enabled bool                      `json:"enabled"`
				Target  struct{ ID, Name string } `json:"target"`
			}
			if json.Unmarshal(it, &cr) != nil || (cr.Target.ID != targetID && cr.Target.Name != targetName) || !cr.Enabled {
				continue
			}
			id = cr.ID
			names = append(names, cr.Name)
		}
		switch len(names) {
		case 0:
			return "", fmt.Errorf("you have no enabled credential for target %q; create one with `gatehouse credentials create --target %s`", targetName, targetName)
		case 1:
		default:
			return "", fmt.Errorf("you have %d credentials for target %q (%s); choose one with --credential", len(names), targetName, strings.Join(names, ", "))
		}
	}
	b, err := api.do(g.Ctx, request{method: http.MethodGet, path: creds.item(id) + "/secret"})
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// gateway finds the proxy address and the CA to trust: the flags, or GET /api-proxy/api/v1/conf.
func (c *connectCmd) gateway(g *Globals, api *apiClient) (*url.URL, *x509.CertPool, error) {
	var conf proxyConf
	if c.Proxy == "" || c.CAFile == "" {
		if err := api.get(g.Ctx, "/api-proxy/api/v1/conf", nil, &conf); err != nil {
			return nil, nil, err
		}
	}
	addr := c.Proxy
	if addr == "" {
		if len(conf.Addresses) == 0 {
			return nil, nil, errors.New("the server lists no proxy address; set public_addresses in the proxy settings or pass --proxy")
		}
		addr = conf.Addresses[0]
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	pu, err := url.Parse(addr)
	if err != nil || pu.Host == "" || pu.Scheme != "http" {
		return nil, nil, fmt.Errorf("--proxy %q: want http://HOST:PORT of the Gatehouse proxy listener", addr)
	}
	chain := conf.CACertificateChain
	if c.CAFile != "" {
		b, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--ca-file: %w", err)
		}
		chain = string(b)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(chain)) {
		if c.CAFile != "" {
			return nil, nil, fmt.Errorf("--ca-file %s holds no PEM certificate", c.CAFile)
		}
		return nil, nil, errors.New("the server sent no proxy CA chain")
	}
	return pu, pool, nil
}
