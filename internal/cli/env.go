package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/policy"
)

type envCmd struct {
	Credential string `required:"" placeholder:"ID-OR-NAME" help:"Your proxy credential (see gatehouse credentials list)."`
	User       string `default:"current" placeholder:"USER" help:"Owner of the credential: current (you), or a user id or username."`
	CAOut      string `name:"ca-out" placeholder:"PATH" help:"Where to write the proxy CA bundle (default: proxy-ca.pem in the config dir)."`
	Address    string `placeholder:"HOST:PORT" help:"Proxy address to use when the server lists several (default: the first)."`
}

// Help shows how the output is meant to be used.
func (*envCmd) Help() string {
	return `Prints shell exports that send ordinary HTTP clients (curl, kubectl, Python requests, Node, Go) through the
Gatehouse proxy with the given credential, and writes the proxy's CA bundle for them to trust:

  eval "$(gatehouse env --credential my-cred)"
  curl -H "Authorization: Bearer $GATEHOUSE_TOKEN" https://api.example.com/...`
}

// proxyConf is the part of GET /api-proxy/api/v1/conf the env command uses.
type proxyConf struct {
	Addresses          []string `json:"addresses"`
	CACertificateChain string   `json:"ca_certificate_chain"`
}

func (c *envCmd) Run(g *Globals) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	user := c.User
	if user != "current" {
		if user, err = usersResource.resolve(g.Ctx, api, user); err != nil {
			return err
		}
	}
	creds := credentialsResource(user)
	id, raw, err := creds.fetch(g.Ctx, api, c.Credential)
	if err != nil {
		return err
	}
	var cred struct {
		Name     string `json:"name"`
		NotAfter string `json:"not_after"`
		Target   struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"target"`
	}
	if err := json.Unmarshal(raw, &cred); err != nil {
		return fmt.Errorf("decode credential: %w", err)
	}
	var conf proxyConf
	if err := api.get(g.Ctx, "/api-proxy/api/v1/conf", nil, &conf); err != nil {
		return err
	}
	addr := c.Address
	if addr == "" {
		if len(conf.Addresses) == 0 {
			return fmt.Errorf("the server lists no proxy address; set public_addresses in the proxy settings or pass --address")
		}
		addr = conf.Addresses[0]
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	secret, err := api.do(g.Ctx, request{method: http.MethodGet, path: creds.item(id) + "/secret"})
	if err != nil {
		return err
	}
	caPath, err := c.writeCA(conf.CACertificateChain)
	if err != nil {
		return err
	}
	example := exampleCommand(g, api, cred.Target.ID)
	w := g.Stdout
	fmt.Fprintf(w, "# Gatehouse proxy settings for credential %q (target %q), valid until %s.\n", cred.Name, cred.Target.Name, cred.NotAfter)
	again := "gatehouse env --credential " + id
	if c.User != "current" {
		again += " --user " + user // the credential is found under its owner, not under whoever runs this
	}
	fmt.Fprintf(w, "# Load them with: eval \"$(%s)\"\n", again)
	fmt.Fprintf(w, "export HTTPS_PROXY=%s HTTP_PROXY=%s https_proxy=%s http_proxy=%s\n", shellQuote(addr), shellQuote(addr), shellQuote(addr), shellQuote(addr))
	q := shellQuote(caPath)
	fmt.Fprintf(w, "export SSL_CERT_FILE=%s REQUESTS_CA_BUNDLE=%s NODE_EXTRA_CA_CERTS=%s CURL_CA_BUNDLE=%s\n", q, q, q, q)
	fmt.Fprintf(w, "export GATEHOUSE_TOKEN=%s\n", shellQuote(strings.TrimSpace(string(secret))))
	fmt.Fprintf(w, "# Send the token with every request through the proxy, e.g.:\n")
	fmt.Fprintf(w, "#   %s\n", example)
	fmt.Fprintf(w, "# Or, for clients with no proxy, CA or token setting: gatehouse connect %s --credential %s --listen 127.0.0.1:8080\n", shellQuote(cred.Target.Name), id)
	fmt.Fprintf(w, "#   then plain HTTP to the target: curl http://127.0.0.1:8080/\n")
	fmt.Fprintf(w, "# NO_PROXY/no_proxy: hosts listed there bypass Gatehouse, so the target's hosts must not be in it. The CA\n")
	fmt.Fprintf(w, "# bundle above holds only the Gatehouse proxy CA, and SSL_CERT_FILE replaces the system roots for many\n")
	fmt.Fprintf(w, "# clients, so HTTPS to hosts you do add to NO_PROXY may fail verification; use a separate shell for those.\n")
	return nil
}

// exampleCommand is a curl command the credential's target allows. A user without api-targets-view cannot read the
// target; the example then names no host.
func exampleCommand(g *Globals, api *apiClient, targetID string) string {
	const generic = `curl -H "Authorization: Bearer $GATEHOUSE_TOKEN" https://TARGET-HOST/PATH`
	var target struct {
		Authorized   []policy.Endpoint `json:"authorized_endpoints"`
		Unauthorized []policy.Endpoint `json:"unauthorized_endpoints"`
	}
	if api.get(g.Ctx, targetsResource.item(targetID), nil, &target) != nil {
		return generic
	}
	rules, err := policy.CompileRules(target.Authorized, target.Unauthorized)
	if err != nil {
		return generic
	}
	ex, ok := policy.ExampleRequest(rules)
	if !ok {
		return generic
	}
	method := ""
	if ex.Method != http.MethodGet {
		method = "-X " + ex.Method + " "
	}
	u := ex.URL
	if strings.ContainsFunc(u, func(r rune) bool { return !strings.ContainsRune(urlSafe, r) }) {
		u = shellQuote(u)
	}
	return fmt.Sprintf(`curl %s-H "Authorization: Bearer $GATEHOUSE_TOKEN" %s`, method, u)
}

// urlSafe are the characters a shell never treats specially, so a URL made only of them needs no quotes.
const urlSafe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:/_~%-"

// writeCA writes the proxy CA chain where clients will read it. It is public, so 0644.
func (c *envCmd) writeCA(chain string) (string, error) {
	if strings.TrimSpace(chain) == "" {
		return "", fmt.Errorf("the server sent no proxy CA chain")
	}
	path := c.CAOut
	if path == "" {
		dir, err := configDir()
		if err != nil {
			return "", err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("create config dir: %w", err)
		}
		path = filepath.Join(dir, "proxy-ca.pem")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("ca file: %w", err)
	}
	if err := writeFileMode(abs, []byte(chain), 0o644); err != nil {
		return "", err
	}
	return abs, nil
}

// shellQuote quotes s for POSIX shells: single quotes, with embedded ones closed, escaped and reopened.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
