package cli

import (
	"errors"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
)

type rolesCmd struct {
	List    listCmd        `cmd:"" help:"List roles."`
	Get     getCmd         `cmd:"" help:"Show a role."`
	Create  roleCreateCmd  `cmd:"" help:"Create a role."`
	Update  roleUpdateCmd  `cmd:"" help:"Change a role's name, comment or permissions."`
	Delete  deleteCmd      `cmd:"" help:"Delete a role."`
	Members roleMembersCmd `cmd:"" help:"List the users holding a role."`
}

// ProvideResource hands the roles resource to the generic subcommands.
func (*rolesCmd) ProvideResource() *resource { return rolesResource }

// Help lists the permission names, which are what a role is for. They come from this binary; a server of another
// version may know more or fewer, and names the one it rejects.
func (*roleCreateCmd) Help() string { return permissionHelp() }

// Help lists the permission names.
func (*roleUpdateCmd) Help() string { return permissionHelp() }

func permissionHelp() string {
	return "Permissions: " + strings.Join(auth.AllPermissions, " ") +
		"\n\nOr give the whole role with -f FILE: {\"name\":\"ops\",\"comment\":\"...\",\"permissions\":[\"api-targets-view\"]}"
}

type roleCreateCmd struct {
	bodyFlag
	Name       string   `help:"Role name (required unless in -f)."`
	Comment    string   `help:"Free text."`
	Permission []string `placeholder:"PERM" help:"Permission to grant; repeat or separate with commas."`
	outputFlags
}

func (c *roleCreateCmd) Run(g *Globals) error {
	flags := map[string]any{}
	setIf(flags, "name", c.Name)
	setIf(flags, "comment", c.Comment)
	if c.Permission != nil {
		flags["permissions"] = c.Permission
	}
	body, err := c.body(g, flags)
	if err != nil {
		return err
	}
	_, err = create(g, rolesResource, c.outputFlags, body)
	return err
}

type roleUpdateCmd struct {
	ID string `arg:"" name:"role" help:"Id or name."`
	bodyFlag
	Name       *string  `help:"New name."`
	Comment    *string  `help:"Free text."`
	Permission []string `placeholder:"PERM" help:"Replace the permissions with these; repeat or separate with commas."`
	outputFlags
}

func (c *roleUpdateCmd) Run(g *Globals) error {
	flags := map[string]any{}
	setPtr(flags, "name", c.Name)
	setPtr(flags, "comment", c.Comment)
	if c.Permission != nil {
		flags["permissions"] = c.Permission
	}
	if len(flags) == 0 && c.File == "" {
		return errors.New("nothing to change: give a flag or -f FILE")
	}
	body, err := c.body(g, flags)
	if err != nil {
		return err
	}
	return update(g, rolesResource, c.outputFlags, c.ID, body)
}

type roleMembersCmd struct {
	ID string `arg:"" name:"role" help:"Id or name."`
	outputFlags
}

func (c *roleMembersCmd) Run(g *Globals) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	id, err := rolesResource.resolve(g.Ctx, api, c.ID)
	if err != nil {
		return err
	}
	items, err := api.listAll(g.Ctx, rolesResource.item(id)+"/members", nil)
	if err != nil {
		return err
	}
	return printList(g.Stdout, c.outputFlags, items, []column{{"ID", "id"}, {"NAME", "name"}, {"TYPE", "type"}})
}
