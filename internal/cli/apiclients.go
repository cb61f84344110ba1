package cli

import (
	"context"
	"errors"
)

var apiClientsResource = &resource{
	noun: "api client", path: "/local-user-store/api/v1/api-clients", nameField: "name",
	columns: []column{{"ID", "id"}, {"NAME", "name"}, {"OAUTH CLIENT ID", "oauth_client_id"}, {"ROLES", "roles"}},
}

type apiClientsCmd struct {
	List   listCmd            `cmd:"" help:"List API clients."`
	Get    getCmd             `cmd:"" help:"Show an API client with its four credential values (id, secret, oauth_client_id, oauth_client_secret)."`
	Create apiClientCreateCmd `cmd:"" help:"Create an API client; its credentials are generated (see get)."`
	Update apiClientUpdateCmd `cmd:"" help:"Rename an API client or replace its roles."`
	Delete deleteCmd          `cmd:"" help:"Delete an API client; its tokens stop working at once."`
}

// ProvideResource hands the API clients resource to the generic subcommands.
func (*apiClientsCmd) ProvideResource() *resource { return apiClientsResource }

// Help explains how an API client gets a token, which is the point of creating one.
func (*apiClientsCmd) Help() string {
	return `An API client logs in with the password grant: HTTP Basic oauth_client_id:oauth_client_secret, username = the
client's id, password = its secret. ` + "`gatehouse api-clients get NAME`" + ` shows all four values.`
}

type apiClientCreateCmd struct {
	bodyFlag
	Name string   `help:"Name (required unless in -f)."`
	Role []string `placeholder:"ROLE" help:"Role (name or id) the client holds; repeat or separate with commas."`
	outputFlags
}

func (c *apiClientCreateCmd) Run(g *Globals) error {
	flags := map[string]any{}
	setIf(flags, "name", c.Name)
	if err := roleRefsFlag(g.Ctx, flags, c.Role); err != nil {
		return err
	}
	body, err := c.body(g, flags)
	if err != nil {
		return err
	}
	_, err = create(g, apiClientsResource, c.outputFlags, body)
	return err
}

type apiClientUpdateCmd struct {
	ID string `arg:"" name:"api-client" help:"Id or name."`
	bodyFlag
	Name *string  `help:"New name."`
	Role []string `placeholder:"ROLE" help:"Replace the roles with these (names or ids)."`
	outputFlags
}

func (c *apiClientUpdateCmd) Run(g *Globals) error {
	flags := map[string]any{}
	setPtr(flags, "name", c.Name)
	if err := roleRefsFlag(g.Ctx, flags, c.Role); err != nil {
		return err
	}
	if len(flags) == 0 && c.File == "" {
		return errors.New("nothing to change: give a flag or -f FILE")
	}
	body, err := c.body(g, flags)
	if err != nil {
		return err
	}
	return update(g, apiClientsResource, c.outputFlags, c.ID, body)
}

// roleRefsFlag resolves --role values into flags["roles"]; no --role leaves the roles alone.
func roleRefsFlag(ctx context.Context, flags map[string]any, roles []string) error {
	if roles == nil {
		return nil
	}
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	r, err := refs(ctx, api, rolesResource, roles)
	if err != nil {
		return err
	}
	flags["roles"] = r
	return nil
}
