package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

var sourcesResource = &resource{
	noun: "source", path: "/role-store/api/v1/sources", nameField: "name",
	columns: []column{{"ID", "id"}, {"NAME", "name"}, {"TYPE", "connection.type"}, {"ENABLED", "enabled"},
		{"TTL", "ttl"}, {"STATUS", "status_code"}},
}

type sourcesCmd struct {
	List    listCmd          `cmd:"" help:"List user sources (the built-in LOCAL one, LDAP, AD, OIDC, ...)."`
	Get     getCmd           `cmd:"" help:"Show a source (secrets are never shown)."`
	Create  sourceCreateCmd  `cmd:"" help:"Add a user source."`
	Update  sourceUpdateCmd  `cmd:"" help:"Change a source; fields and secrets not given keep their value."`
	Delete  deleteCmd        `cmd:"" help:"Delete a source and the users it provided."`
	Refresh sourceRefreshCmd `cmd:"" help:"Start a sync of sources now (all of them if none is named)."`
	Status  sourceStatusCmd  `cmd:"" help:"Show the result of each source's last sync."`
}

// ProvideResource hands the sources resource to the generic subcommands.
func (*sourcesCmd) ProvideResource() *resource { return sourcesResource }

// sourceFlags cover the LDAP, AD and OIDC fields an administrator sets most; the rest go in -f FILE.
type sourceFlags struct {
	bodyFlag
	Name            *string  `help:"Name of the source."`
	Comment         *string  `help:"Free text."`
	Tag             []string `placeholder:"TAG" help:"Tag; repeat or separate with commas (replaces the tags on update)."`
	Enabled         *bool    `negatable:"" help:"Enable (--enabled, the default on create) or disable (--no-enabled) the source."`
	TTL             *int64   `name:"ttl" placeholder:"SECONDS" help:"Seconds between syncs."`
	UsernamePattern []string `name:"username-pattern" placeholder:"GLOB" help:"Login names this source authenticates, e.g. *@example.com (replaces the patterns on update)."`

	Type                           string   `name:"type" help:"Connection type: LDAP, AD or OIDC (the reference's cloud types are refused as not supported)."`
	Address                        string   `help:"Directory server host."`
	Port                           *int     `help:"Directory server port."`
	LDAPProtocol                   string   `name:"ldap-protocol" help:"LDAP, LDAPS or STARTTLS."`
	LDAPBase                       string   `name:"ldap-base" placeholder:"DN" help:"Search base."`
	LDAPUserFilter                 string   `name:"ldap-user-filter" placeholder:"FILTER" help:"Filter selecting the users to sync."`
	LDAPBindDN                     string   `name:"ldap-bind-dn" placeholder:"DN" help:"DN to bind as for searches."`
	LDAPBindPasswordFile           string   `name:"ldap-bind-password-file" placeholder:"FILE" help:"Bind password, read from FILE (- for standard input)."`
	LDAPUserDNPattern              string   `name:"ldap-user-dn-pattern" placeholder:"PATTERN" help:"DN of a user from the login name, e.g. uid={0},ou=people."`
	OIDCIssuer                     string   `name:"oidc-issuer" placeholder:"URL" help:"OpenID provider's issuer URL."`
	OIDCClientID                   string   `name:"oidc-client-id" help:"Client id registered with the provider."`
	OIDCClientSecretFile           string   `name:"oidc-client-secret-file" placeholder:"FILE" help:"Client secret, read from FILE (- for standard input)."`
	OIDCScope                      []string `name:"oidc-scope" placeholder:"SCOPE" help:"Additional scope to ask for; repeat."`
	OIDCTagsAttribute              string   `name:"oidc-tags-attribute" placeholder:"CLAIM" help:"Claim whose values become the user's tags."`
	OIDCButtonTitle                string   `name:"oidc-button-title" help:"Label of the login button."`
	MFAType                        string   `name:"mfa-type" help:"Second factor after the password: DISABLED, TOTP or RADIUS."`
	MFAAddress                     string   `name:"mfa-address" placeholder:"HOST" help:"With --mfa-type RADIUS: the RADIUS server."`
	MFAPort                        *int     `name:"mfa-port" help:"With --mfa-type RADIUS: its port (default 1812)."`
	MFASharedSecretFile            string   `name:"mfa-shared-secret-file" placeholder:"FILE" help:"With --mfa-type RADIUS: the shared secret, read from FILE (- for standard input)."`
	MFARequireMessageAuthenticator bool     `name:"mfa-require-message-authenticator" help:"With --mfa-type RADIUS: refuse answers without a Message-Authenticator (Blast-RADIUS, CVE-2024-3596); the server must send one."`
	outputFlags
}

// fields returns the top-level fields and the connection fields the flags set.
func (c *sourceFlags) fields(g *Globals) (top, conn map[string]any, err error) {
	top, conn = map[string]any{}, map[string]any{}
	setPtr(top, "name", c.Name)
	setPtr(top, "comment", c.Comment)
	setPtr(top, "enabled", c.Enabled)
	setPtr(top, "ttl", c.TTL)
	if c.Tag != nil {
		top["tags"] = nonEmpty(c.Tag)
	}
	if c.UsernamePattern != nil {
		top["username_pattern"] = nonEmpty(c.UsernamePattern)
	}
	for k, v := range map[string]string{
		"type": strings.ToUpper(c.Type), "address": c.Address, "ldap_protocol": strings.ToUpper(c.LDAPProtocol),
		"ldap_base": c.LDAPBase, "ldap_user_filter": c.LDAPUserFilter, "ldap_bind_dn": c.LDAPBindDN,
		"ldap_user_dn_pattern": c.LDAPUserDNPattern, "oidc_issuer": c.OIDCIssuer, "oidc_client_id": c.OIDCClientID,
		"oidc_tags_attribute_name": c.OIDCTagsAttribute, "oidc_button_title": c.OIDCButtonTitle,
		"mfa_type": strings.ToUpper(c.MFAType), "mfa_address": c.MFAAddress,
	} {
		if v != "" {
			conn[k] = v
		}
	}
	setPtr(conn, "port", c.Port)
	setPtr(conn, "mfa_port", c.MFAPort)
	if c.MFARequireMessageAuthenticator {
		conn["mfa_require_message_authenticator"] = true
	}
	if c.OIDCScope != nil {
		conn["oidc_additional_scopes"] = nonEmpty(c.OIDCScope)
	}
	for key, path := range map[string]string{"ldap_bind_password": c.LDAPBindPasswordFile, "oidc_client_secret": c.OIDCClientSecretFile,
		"mfa_shared_secret": c.MFASharedSecretFile} {
		if path == "" {
			continue
		}
		secret, err := readSecretFile(path, g.Stdin)
		if err != nil {
			return nil, nil, err
		}
		conn[key] = secret
	}
	return top, conn, nil
}

// sourceBody lays the file (if any), then the flags over base. Connection fields merge one level down, so that
// --address changes the address and keeps the rest of the connection.
func (c *sourceFlags) sourceBody(g *Globals, base map[string]any) (map[string]any, error) {
	top, conn, err := c.fields(g)
	if err != nil {
		return nil, err
	}
	body := base
	if c.File != "" {
		raw, err := readBodyFile(c.File, g.Stdin)
		if err != nil {
			return nil, err
		}
		var file map[string]any
		if err := json.Unmarshal(raw, &file); err != nil {
			return nil, fmt.Errorf("body file must hold a JSON object: %w", err)
		}
		fileConn, _ := file["connection"].(map[string]any)
		delete(file, "connection")
		for k, v := range file {
			body[k] = v
		}
		for k, v := range conn {
			if fileConn == nil {
				fileConn = map[string]any{}
			}
			fileConn[k] = v
		}
		conn = fileConn
	}
	for k, v := range top {
		body[k] = v
	}
	if len(conn) > 0 {
		merged, _ := body["connection"].(map[string]any)
		if merged == nil {
			merged = map[string]any{}
		}
		for k, v := range conn {
			merged[k] = v
		}
		body["connection"] = merged
	}
	return body, nil
}

type sourceCreateCmd struct {
	sourceFlags
}

// Help shows a typical LDAP source, since most real sources need several connection fields.
func (*sourceCreateCmd) Help() string {
	return `An LDAP directory from flags:

  gatehouse sources create --name corp --type LDAP --address ldap.example.com --port 636 --ldap-protocol LDAPS \
      --ldap-base dc=example,dc=com --ldap-bind-dn cn=gatehouse,dc=example,dc=com \
      --ldap-bind-password-file bind.txt --ldap-user-dn-pattern 'uid={0},ou=people,dc=example,dc=com'

Or from a JSON or YAML file (-f) in the API's shape; flags given as well override its fields:

  name: corp
  ttl: 3600
  username_pattern: ["*@example.com"]
  connection:
    type: AD
    address: dc1.example.com
    ldap_base: dc=example,dc=com
    attribute_mapping: {email: mail}`
}

func (c *sourceCreateCmd) Run(g *Globals) error {
	body, err := c.sourceBody(g, map[string]any{})
	if err != nil {
		return err
	}
	// A source an administrator adds is meant to be used; disabling it is the exception that must be asked for.
	if _, ok := body["enabled"]; !ok {
		body["enabled"] = true
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	_, err = create(g, sourcesResource, c.outputFlags, raw)
	return err
}

type sourceUpdateCmd struct {
	ID string `arg:"" name:"source" help:"Id or name."`
	sourceFlags
}

// Run reads the source, changes what was asked and puts the whole definition back: the API replaces a source on
// PUT, keeping only the secrets that are left out.
func (c *sourceUpdateCmd) Run(g *Globals) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	id, raw, err := sourcesResource.fetch(g.Ctx, api, c.ID)
	if err != nil {
		return err
	}
	var current map[string]any
	if err := json.Unmarshal(raw, &current); err != nil {
		return fmt.Errorf("decode source: %w", err)
	}
	top, conn, err := c.fields(g)
	if err != nil {
		return err
	}
	if len(top) == 0 && len(conn) == 0 && c.File == "" {
		return errors.New("nothing to change: give a flag or -f FILE")
	}
	body, err := c.sourceBody(g, current)
	if err != nil {
		return err
	}
	if err := api.call(g.Ctx, http.MethodPut, sourcesResource.item(id), body, nil); err != nil {
		return err
	}
	var after json.RawMessage
	if err := api.get(g.Ctx, sourcesResource.item(id), nil, &after); err != nil {
		return err
	}
	return printObject(g.Stdout, c.outputFlags, after)
}

type sourceRefreshCmd struct {
	Sources []string `arg:"" optional:"" name:"source" help:"Ids or names; none means every source."`
	outputFlags
}

func (c *sourceRefreshCmd) Run(g *Globals) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	ids := []string{}
	for _, ref := range c.Sources {
		id, err := sourcesResource.resolve(g.Ctx, api, ref)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	var l struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := api.call(g.Ctx, http.MethodPost, sourcesResource.path+"/refresh", ids, &l); err != nil {
		return err
	}
	if err := printList(g.Stdout, c.outputFlags, l.Items, sourcesResource.columns); err != nil {
		return err
	}
	if !c.json() {
		fmt.Fprintln(g.Stderr, "refresh started; see `gatehouse sources status` for the result")
	}
	return nil
}

type sourceStatusCmd struct {
	Sources []string `arg:"" optional:"" name:"source" help:"Ids or names; none means every source."`
	outputFlags
}

var sourceStatusColumns = []column{{"NAME", "name"}, {"TYPE", "connection.type"}, {"ENABLED", "enabled"},
	{"STATUS", "status_code"}, {"UPDATED", "updated"}, {"DETAIL", "status_text"}}

func (c *sourceStatusCmd) Run(g *Globals) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	var items []json.RawMessage
	if len(c.Sources) == 0 {
		if items, err = api.listAll(g.Ctx, sourcesResource.path, nil); err != nil {
			return err
		}
	}
	for _, ref := range c.Sources {
		_, raw, err := sourcesResource.fetch(g.Ctx, api, ref)
		if err != nil {
			return err
		}
		items = append(items, raw)
	}
	return printList(g.Stdout, c.outputFlags, items, sourceStatusColumns)
}
