package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"
)

var credentialColumns = []column{{"ID", "id"}, {"NAME", "name"}, {"TARGET", "target.name"}, {"NOT BEFORE", "not_before"},
	{"NOT AFTER", "not_after"}, {"SOURCES", "source_address"}, {"ENABLED", "enabled"}, {"LAST USED", "last_used"}}

type credentialsCmd struct {
	User string `default:"current" placeholder:"USER" help:"Whose credentials: current (you), or a user id or username (needs api-proxy-credentials-manage)."`

	List   listCmd             `cmd:"" help:"List proxy credentials."`
	Get    getCmd              `cmd:"" help:"Show a proxy credential (never its secret; see secret)."`
	Create credentialCreateCmd `cmd:"" help:"Create a proxy credential for a target and print its secret."`
	Update credentialUpdateCmd `cmd:"" help:"Rename, enable/disable, change source addresses or narrow the validity window."`
	Delete deleteCmd           `cmd:"" help:"Delete a proxy credential; it stops working at once."`
	Secret credentialSecretCmd `cmd:"" help:"Print a credential's secret, or a kubeconfig that uses it (only its owner may)."`
	Rotate credentialRotateCmd `cmd:"" help:"Replace a credential's secret; the old one stops working at once and only the owner can read the new one."`
}

// Help says what a proxy credential is for.
func (*credentialsCmd) Help() string {
	return `A proxy credential is a personal, time-boxed secret that lets its holder send requests to one API target
through the Gatehouse proxy. ` + "`gatehouse env --credential ID`" + ` prints the shell settings that use it.`
}

// ProvideResource builds the credentials resource of the user --user names.
func (c *credentialsCmd) ProvideResource(g *Globals) (*resource, error) {
	user := c.User
	if user != "current" {
		api, err := newAPIClient()
		if err != nil {
			return nil, err
		}
		if user, err = usersResource.resolve(g.Ctx, api, user); err != nil {
			return nil, err
		}
	}
	return credentialsResource(user), nil
}

// userFlag is the --user flag that finds a credential of r again, "" for the caller's own.
func userFlag(r *resource) string {
	if r.owner == "" || r.owner == "current" {
		return ""
	}
	return " --user " + r.owner
}

func credentialsResource(userID string) *resource {
	return &resource{noun: "credential", path: "/api-proxy/api/v1/users/" + url.PathEscape(userID) + "/client-credentials",
		nameField: "name", columns: credentialColumns, owner: userID}
}

type credentialCreateCmd struct {
	bodyFlag
	Target    string        `required:"" placeholder:"NAME-OR-ID" help:"API target the credential is for."`
	Name      string        `help:"Name (default: the target's name and the time)."`
	Comment   string        `help:"Free text."`
	ValidFor  time.Duration `name:"valid-for" placeholder:"DURATION" help:"How long the credential is valid from now or --not-before, e.g. 8h (default: the server's maximum validity)."`
	NotBefore *time.Time    `name:"not-before" placeholder:"RFC3339" help:"Start of validity (default: now)."`
	Source    []string      `placeholder:"CIDR" help:"Source address (IP or CIDR) the credential may be used from; repeat or separate with commas (default: anywhere)."`
	Disabled  bool          `help:"Create it disabled."`
	outputFlags
}

func (c *credentialCreateCmd) Run(g *Globals, r *resource) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	var target struct {
		Name string `json:"name"`
	}
	targetID, raw, err := targetsResource.fetch(g.Ctx, api, c.Target)
	switch {
	case isForbidden(err):
		// Users who may create credentials need not be allowed to read targets; they name the target by id and
		// the server decides.
		targetID, target.Name = c.Target, "credential"
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(raw, &target); err != nil {
			return fmt.Errorf("decode target: %w", err)
		}
	}
	flags := map[string]any{"target": map[string]string{"id": targetID}}
	name := c.Name
	if name == "" && c.File == "" {
		name = target.Name + "-" + time.Now().UTC().Format("20060102-150405")
	}
	setIf(flags, "name", name)
	setIf(flags, "comment", c.Comment)
	if c.NotBefore != nil {
		flags["not_before"] = c.NotBefore.UTC()
	}
	if c.ValidFor > 0 {
		start := time.Now()
		if c.NotBefore != nil {
			start = *c.NotBefore
		}
		flags["not_after"] = start.Add(c.ValidFor).UTC()
	}
	if c.Source != nil {
		flags["source_address"] = c.Source
	}
	if c.Disabled {
		flags["enabled"] = false
	}
	body, err := c.body(g, flags)
	if err != nil {
		return err
	}
	var res struct {
		ID       string   `json:"id"`
		Warnings []string `json:"warnings"`
	}
	if err := api.call(g.Ctx, http.MethodPost, r.path, body, &res); err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(g.Stderr, "warning:", w)
	}
	var cred json.RawMessage
	if err := api.get(g.Ctx, r.item(res.ID), nil, &cred); err != nil {
		return fmt.Errorf("credential %s was created, but reading it back failed: %w", res.ID, err)
	}
	secret, err := api.do(g.Ctx, request{method: http.MethodGet, path: r.item(res.ID) + "/secret"})
	if isForbidden(err) {
		// Created for someone else: only its owner may read the secret, so the creator cannot act as them.
		if err := printObject(g.Stdout, c.outputFlags, cred); err != nil {
			return err
		}
		if !c.json() {
			fmt.Fprintln(g.Stderr, "Only the credential's owner can read its secret: they run `gatehouse credentials secret "+res.ID+"`.")
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("credential %s was created, but fetching its secret failed: %w", res.ID, err)
	}
	// The secret is added to the credential's own fields, so one answer holds all a script needs.
	head, _ := json.Marshal(map[string]string{"secret": string(secret)})
	out := append(bytes.TrimSuffix(bytes.TrimSpace(cred), []byte("}")), ',')
	out = append(out, head[1:]...)
	if err := printObject(g.Stdout, c.outputFlags, out); err != nil {
		return err
	}
	if !c.json() {
		if userFlag(r) == "" {
			fmt.Fprintln(g.Stderr, "Keep the secret safe: it works like a password. `gatehouse credentials secret "+res.ID+"` prints it again;")
			fmt.Fprintln(g.Stderr, "`gatehouse env --credential "+res.ID+"` prints the proxy settings that use it.")
		} else {
			// The server lets the creator read another user's secret only briefly, to hand it over.
			fmt.Fprintln(g.Stderr, "Hand the secret to its owner over a safe channel: they can print it again with `gatehouse credentials secret "+res.ID+"`;")
			fmt.Fprintln(g.Stderr, "you can (also with `gatehouse env --credential "+res.ID+userFlag(r)+"`) only until its first use, 10 minutes at most.")
		}
	}
	return nil
}

type credentialUpdateCmd struct {
	ID string `arg:"" name:"credential" help:"Id or name."`
	bodyFlag
	Name      *string       `help:"New name."`
	Comment   *string       `help:"Free text."`
	Enabled   *bool         `negatable:"" help:"Enable (--enabled) or disable (--no-enabled) the credential."`
	Source    []string      `placeholder:"CIDR" help:"Replace the allowed source addresses (IPs or CIDRs)."`
	NotBefore *time.Time    `name:"not-before" placeholder:"RFC3339" help:"New start of validity; may only move later."`
	NotAfter  *time.Time    `name:"not-after" placeholder:"RFC3339" help:"New end of validity; may only move earlier."`
	ValidFor  time.Duration `name:"valid-for" placeholder:"DURATION" help:"End validity this long from now; may only shorten it."`
	outputFlags
}

func (c *credentialUpdateCmd) Run(g *Globals, r *resource) error {
	flags := map[string]any{}
	setPtr(flags, "name", c.Name)
	setPtr(flags, "comment", c.Comment)
	setPtr(flags, "enabled", c.Enabled)
	if c.Source != nil {
		flags["source_address"] = c.Source
	}
	if c.NotBefore != nil {
		flags["not_before"] = c.NotBefore.UTC()
	}
	if c.NotAfter != nil && c.ValidFor > 0 {
		return errors.New("--not-after and --valid-for both set the end of validity; pass one")
	}
	if c.NotAfter != nil {
		flags["not_after"] = c.NotAfter.UTC()
	}
	if c.ValidFor > 0 {
		flags["not_after"] = time.Now().Add(c.ValidFor).UTC()
	}
	if len(flags) == 0 && c.File == "" {
		return errors.New("nothing to change: give a flag or -f FILE")
	}
	body, err := c.body(g, flags)
	if err != nil {
		return err
	}
	return update(g, r, c.outputFlags, c.ID, body)
}

type credentialRotateCmd struct {
	ID string `arg:"" name:"credential" help:"Id or name."`
	outputFlags
}

func (c *credentialRotateCmd) Run(g *Globals, r *resource) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	id, err := r.resolve(g.Ctx, api, c.ID)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := api.call(g.Ctx, http.MethodPost, r.item(id)+"/rotate", nil, &raw); err != nil {
		return err
	}
	return printObject(g.Stdout, c.outputFlags, raw)
}

type credentialSecretCmd struct {
	ID     string `arg:"" name:"credential" help:"Id or name."`
	Format string `enum:"text,kubeconfig" default:"text" help:"text: the secret alone; kubeconfig: a kubeconfig that sends kubectl through the proxy with it."`
	Out    string `placeholder:"FILE" help:"Write to FILE (mode 0600) instead of standard output."`
}

func (c *credentialSecretCmd) Run(g *Globals, r *resource) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	id, err := r.resolve(g.Ctx, api, c.ID)
	if err != nil {
		return err
	}
	q := url.Values{}
	if c.Format != "text" {
		q.Set("format", c.Format)
	}
	b, err := api.do(g.Ctx, request{method: http.MethodGet, path: r.item(id) + "/secret", query: q})
	if err != nil {
		return err
	}
	if c.Format == "text" && !bytes.HasSuffix(b, []byte("\n")) {
		b = append(b, '\n')
	}
	if c.Out == "" {
		_, err := g.Stdout.Write(b)
		return err
	}
	if err := writeFileMode(c.Out, b, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(g.Stderr, "wrote %s\n", c.Out)
	return nil
}

// writeFileMode writes b to path with exactly mode, also when the file exists with a wider one: the mode is set
// before any byte is written.
func writeFileMode(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
