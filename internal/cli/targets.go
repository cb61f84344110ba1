package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

var targetsResource = &resource{
	noun: "API target", path: "/api-proxy/api/v1/api-targets", nameField: "name",
	columns: []column{{"ID", "id"}, {"NAME", "name"}, {"HOSTS", "authorized_endpoints.host"}, {"ROLES", "roles"},
		{"TAGS", "tags"}, {"CREDENTIAL", "target_credential.type"}, {"DISABLED", "disabled"}},
}

type targetsCmd struct {
	List   listCmd         `cmd:"" help:"List API targets."`
	Get    getCmd          `cmd:"" help:"Show an API target (secrets show only as *_set: true)."`
	Create targetCreateCmd `cmd:"" help:"Register an API target."`
	Update targetUpdateCmd `cmd:"" help:"Change an API target; secrets left out keep their stored value."`
	Delete deleteCmd       `cmd:"" help:"Delete an API target."`
	Search targetSearchCmd `cmd:"" help:"Search API targets by keywords, tags and roles."`
	Tags   targetTagsCmd   `cmd:"" help:"List the tags in use on API targets."`
}

// ProvideResource hands the targets resource to the generic subcommands.
func (*targetsCmd) ProvideResource() *resource { return targetsResource }

// targetFlags are the common fields of a target. Endpoints and credentials cover the simple cases; anything
// richer (several endpoint rules, unauthorized endpoints, NAT) goes in -f FILE.
type targetFlags struct {
	bodyFlag
	Name     *string  `help:"Unique name."`
	Comment  *string  `help:"Free text."`
	Tag      []string `placeholder:"TAG" help:"Tag; repeat or separate with commas (replaces the tags on update)."`
	Role     []string `placeholder:"ROLE" help:"Role (name or id) whose holders may use the target; repeat (replaces the roles on update)."`
	Host     []string `placeholder:"HOST[:PORT]" help:"Authorized endpoint host; one rule per host with --protocol, --method and --path (replaces the authorized endpoints on update)."`
	Protocol []string `default:"https" help:"Protocols of the --host rules: http, https or *."`
	Method   []string `default:"*" help:"Methods of the --host rules, e.g. GET,HEAD; * is any."`
	Path     []string `default:"/**" help:"Path globs of the --host rules: * is one segment, ** the rest of the path."`

	TokenFile             string `name:"token-file" placeholder:"FILE" help:"Target credential of type token: the bearer token, read from FILE (- for standard input)."`
	BasicAuthUsername     string `name:"basic-auth-username" help:"Target credential of type basicauth: the username."`
	BasicAuthPasswordFile string `name:"basic-auth-password-file" placeholder:"FILE" help:"Target credential of type basicauth: the password, read from FILE."`
	HeaderName            string `name:"header-name" help:"Target credential of type header: the header to inject."`
	HeaderValueFile       string `name:"header-value-file" placeholder:"FILE" help:"Target credential of type header: its value, read from FILE."`
	CertFile              string `name:"cert-file" placeholder:"PEM" help:"Target credential of type certificate: the client certificate."`
	KeyFile               string `name:"key-file" placeholder:"PEM" help:"Target credential of type certificate: its private key."`

	TrustAnchorsFile   string `name:"trust-anchors-file" placeholder:"PEM" help:"CA certificates the target's TLS certificate must chain to (default: system roots)."`
	InsecureSkipVerify *bool  `name:"insecure-skip-verify" negatable:"" help:"Do not verify the target's TLS certificate."`
	Disabled           *bool  `negatable:"" help:"Disable (--disabled) or enable (--no-disabled) the target."`
	Audit              *bool  `negatable:"" help:"Record requests to the target (--audit) or not (--no-audit)."`
	outputFlags
}

// fields turns the flags into request fields; only what was given is sent, so an update leaves the rest alone.
func (c *targetFlags) fields(ctx context.Context, g *Globals) (map[string]any, error) {
	m := map[string]any{}
	setPtr(m, "name", c.Name)
	setPtr(m, "comment", c.Comment)
	setPtr(m, "tls_insecure_skip_verify", c.InsecureSkipVerify)
	setPtr(m, "disabled", c.Disabled)
	setPtr(m, "audit_enabled", c.Audit)
	if c.Tag != nil {
		m["tags"] = c.Tag
	}
	if err := roleRefsFlag(ctx, m, c.Role); err != nil {
		return nil, err
	}
	if c.Host != nil {
		eps := make([]map[string]any, 0, len(c.Host))
		for _, h := range c.Host {
			eps = append(eps, map[string]any{"host": h, "protocols": c.Protocol, "methods": c.Method, "paths": c.Path})
		}
		m["authorized_endpoints"] = eps
	}
	if c.TrustAnchorsFile != "" {
		pem, err := readSecretFile(c.TrustAnchorsFile, g.Stdin)
		if err != nil {
			return nil, err
		}
		m["tls_trust_anchors"] = pem
	}
	cred, err := c.credential(g)
	if err != nil {
		return nil, err
	}
	if cred != nil {
		m["target_credential"] = cred
	}
	return m, nil
}

// credential builds target_credential from whichever credential flags were given; at most one type.
func (c *targetFlags) credential(g *Globals) (map[string]any, error) {
	var creds []map[string]any
	read := func(path string) (string, error) {
		if path == "" {
			return "", nil
		}
		return readSecretFile(path, g.Stdin)
	}
	if c.TokenFile != "" {
		tok, err := read(c.TokenFile)
		if err != nil {
			return nil, err
		}
		creds = append(creds, map[string]any{"type": "token", "bearer_token": tok})
	}
	if c.BasicAuthUsername != "" || c.BasicAuthPasswordFile != "" {
		pw, err := read(c.BasicAuthPasswordFile)
		if err != nil {
			return nil, err
		}
		creds = append(creds, map[string]any{"type": "basicauth", "basic_auth_username": c.BasicAuthUsername, "basic_auth_password": pw})
	}
	if c.HeaderName != "" || c.HeaderValueFile != "" {
		v, err := read(c.HeaderValueFile)
		if err != nil {
			return nil, err
		}
		creds = append(creds, map[string]any{"type": "header", "header_name": c.HeaderName, "header_value": v})
	}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := read(c.CertFile)
		if err != nil {
			return nil, err
		}
		key, err := read(c.KeyFile)
		if err != nil {
			return nil, err
		}
		creds = append(creds, map[string]any{"type": "certificate", "certificate": cert, "private_key": key})
	}
	switch len(creds) {
	case 0:
		return nil, nil
	case 1:
		return creds[0], nil
	}
	return nil, errors.New("give the flags of one target credential type only (token, basic auth, header or certificate)")
}

// readSecretFile reads a secret or PEM from a file ("-" is standard input) without its trailing newline, which
// editors and `echo` add but no token contains.
func readSecretFile(path string, stdin io.Reader) (string, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

type targetCreateCmd struct {
	targetFlags
}

// Help shows the shape of a target file, which most real targets need.
func (*targetCreateCmd) Help() string {
	return `Simple targets come from flags:

  gatehouse targets create --name github --host api.github.com --method GET --path '/repos/**' \
      --role developers --token-file token.txt

Richer ones from a JSON or YAML file (-f), in the API's shape:

  name: k8s-prod
  roles: [{id: ROLE-ID}]
  authorized_endpoints:
    - {host: "k8s.example.com:6443", protocols: [https], methods: [GET], paths: ["/api/**"]}
  unauthorized_endpoints: []
  target_credential: {type: token, bearer_token: "..."}
  tls_trust_anchors: |
    -----BEGIN CERTIFICATE-----
    ...`
}

func (c *targetCreateCmd) Run(g *Globals) error {
	flags, err := c.fields(g.Ctx, g)
	if err != nil {
		return err
	}
	body, err := c.body(g, flags)
	if err != nil {
		return err
	}
	_, err = create(g, targetsResource, c.outputFlags, body)
	return err
}

type targetUpdateCmd struct {
	ID string `arg:"" name:"target" help:"Id or name."`
	targetFlags
}

func (c *targetUpdateCmd) Run(g *Globals) error {
	flags, err := c.fields(g.Ctx, g)
	if err != nil {
		return err
	}
	if len(flags) == 0 && c.File == "" {
		return errors.New("nothing to change: give a flag or -f FILE")
	}
	body, err := c.body(g, flags)
	if err != nil {
		return err
	}
	return update(g, targetsResource, c.outputFlags, c.ID, body)
}

type targetSearchCmd struct {
	Keywords []string `arg:"" optional:"" help:"Words that must all appear in the name, comment, tags or hosts."`
	Tag      []string `placeholder:"TAG" help:"Only targets with this tag; repeat for all of several."`
	Role     []string `placeholder:"ROLE" help:"Only targets open to this role (name or id)."`
	Disabled *bool    `negatable:"" help:"Only disabled (--disabled) or enabled (--no-disabled) targets."`
	listFlags
	outputFlags
}

func (c *targetSearchCmd) Run(g *Globals) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	body := map[string]any{"keywords": strings.Join(c.Keywords, " ")}
	if c.Tag != nil {
		body["tags"] = c.Tag
	}
	if c.Role != nil {
		body["roles"] = c.Role
	}
	setPtr(body, "disabled", c.Disabled)
	var l struct {
		Items []json.RawMessage `json:"items"`
	}
	q := c.query()
	q.Set("limit", "1000")
	b, err := api.do(g.Ctx, request{method: http.MethodPost, path: targetsResource.path + "/search", query: q, body: body})
	if err != nil {
		return err
	}
	if err := decodeInto(b, &l); err != nil {
		return err
	}
	return printList(g.Stdout, c.outputFlags, l.Items, targetsResource.columns)
}

type targetTagsCmd struct {
	outputFlags
}

func (c *targetTagsCmd) Run(g *Globals) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	items, err := api.listAll(g.Ctx, targetsResource.path+"/tags", nil)
	if err != nil {
		return err
	}
	if c.json() {
		return printList(g.Stdout, c.outputFlags, items, nil)
	}
	for _, it := range items {
		var tag string
		if err := json.Unmarshal(it, &tag); err != nil {
			return fmt.Errorf("decode tag: %w", err)
		}
		fmt.Fprintln(g.Stdout, tag)
	}
	return nil
}
