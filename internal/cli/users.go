package cli

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

var usersResource = &resource{
	noun: "user", path: "/local-user-store/api/v1/users", nameField: "username",
	columns: []column{{"ID", "id"}, {"USERNAME", "username"}, {"FULL NAME", "full_name"}, {"EMAIL", "email"}, {"ENABLED", "enabled"}, {"SOURCE", "source"}},
}

var rolesResource = &resource{
	noun: "role", path: "/role-store/api/v1/roles", nameField: "name",
	columns: []column{{"ID", "id"}, {"NAME", "name"}, {"PERMISSIONS", "permissions"}, {"COMMENT", "comment"}},
}

type usersCmd struct {
	List        listCmd            `cmd:"" help:"List users."`
	Get         getCmd             `cmd:"" help:"Show a user."`
	Create      userCreateCmd      `cmd:"" help:"Create a local user."`
	Update      userUpdateCmd      `cmd:"" help:"Change a user's username, email, full name or enabled state."`
	Delete      deleteCmd          `cmd:"" help:"Delete a user (their credentials and sessions go with them)."`
	Roles       userRolesCmd       `cmd:"" help:"List the roles a user holds."`
	SetRoles    userSetRolesCmd    `cmd:"" name:"set-roles" help:"Replace the roles granted to a user."`
	SetPassword userSetPasswordCmd `cmd:"" name:"set-password" help:"Set a user's password."`
	MFA         userMFACmd         `cmd:"" name:"mfa" help:"Show the second factor a user's source requires and whether they enrolled."`
	EnrolTOTP   userEnrolTOTPCmd   `cmd:"" name:"enrol-totp" help:"Give a user a new TOTP authenticator and print its otpauth:// URI."`
	ResetMFA    userResetMFACmd    `cmd:"" name:"reset-mfa" help:"Forget a user's TOTP authenticator; they enrol again at their next login."`
}

// ProvideResource hands the users resource to the generic subcommands.
func (*usersCmd) ProvideResource() *resource { return usersResource }

type userCreateCmd struct {
	bodyFlag
	Username      string   `help:"Login name (required unless in -f)."`
	Email         string   `help:"Email address."`
	FullName      string   `name:"full-name" help:"Full name."`
	Disabled      bool     `help:"Create the user disabled."`
	Role          []string `placeholder:"ROLE" help:"Grant this role (name or id); repeat or separate with commas."`
	PasswordStdin bool     `name:"password-stdin" help:"Read the password from the first line of standard input. Otherwise GATEHOUSE_NEW_PASSWORD, or a prompt on a terminal."`
	outputFlags
}

func (c *userCreateCmd) Run(g *Globals) error {
	flags := map[string]any{}
	setIf(flags, "username", c.Username)
	setIf(flags, "email", c.Email)
	setIf(flags, "full_name", c.FullName)
	if c.Disabled {
		flags["enabled"] = false
	}
	body, err := c.body(g, flags)
	if err != nil {
		return err
	}
	if !hasField(body, "password") {
		pw, err := readPassword(g, c.PasswordStdin, "GATEHOUSE_NEW_PASSWORD", "Password for the new user: ")
		if err != nil {
			return err
		}
		if body, err = mergeBody(body, map[string]any{"password": pw}); err != nil {
			return err
		}
	}
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	// Resolve role names before creating, so a typo does not leave a user without the intended roles.
	roles, err := refs(g.Ctx, api, rolesResource, c.Role)
	if err != nil {
		return err
	}
	id, err := create(g, usersResource, c.outputFlags, body)
	if err != nil {
		return err
	}
	if len(roles) > 0 {
		if err := api.call(g.Ctx, http.MethodPut, userRolesPath(id), roles, nil); err != nil {
			return fmt.Errorf("user %s was created, but granting roles failed: %w", id, err)
		}
	}
	return nil
}

type userUpdateCmd struct {
	ID string `arg:"" name:"user" help:"Id or username."`
	bodyFlag
	Username *string `help:"New login name."`
	Email    *string `help:"Email address (empty to clear)."`
	FullName *string `name:"full-name" help:"Full name."`
	Enabled  *bool   `negatable:"" help:"Enable (--enabled) or disable (--no-enabled) the user; disabling ends their sessions."`
	outputFlags
}

func (c *userUpdateCmd) Run(g *Globals) error {
	flags := map[string]any{}
	setPtr(flags, "username", c.Username)
	setPtr(flags, "email", c.Email)
	setPtr(flags, "full_name", c.FullName)
	setPtr(flags, "enabled", c.Enabled)
	if len(flags) == 0 && c.File == "" {
		return errors.New("nothing to change: give a flag or -f FILE")
	}
	body, err := c.body(g, flags)
	if err != nil {
		return err
	}
	return update(g, usersResource, c.outputFlags, c.ID, body)
}

func userRolesPath(userID string) string {
	return "/role-store/api/v1/users/" + url.PathEscape(userID) + "/roles"
}

type userRolesCmd struct {
	ID string `arg:"" name:"user" help:"Id or username."`
	outputFlags
}

func (c *userRolesCmd) Run(g *Globals) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	id, err := usersResource.resolve(g.Ctx, api, c.ID)
	if err != nil {
		return err
	}
	items, err := api.listAll(g.Ctx, userRolesPath(id), nil)
	if err != nil {
		return err
	}
	return printList(g.Stdout, c.outputFlags, items, []column{{"ID", "id"}, {"NAME", "name"}, {"EXPLICIT", "explicit"}})
}

type userSetRolesCmd struct {
	ID    string   `arg:"" name:"user" help:"Id or username."`
	Roles []string `arg:"" optional:"" name:"role" help:"Roles (names or ids) the user should hold; none removes every explicit grant."`
}

func (c *userSetRolesCmd) Run(g *Globals) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	id, err := usersResource.resolve(g.Ctx, api, c.ID)
	if err != nil {
		return err
	}
	roles, err := refs(g.Ctx, api, rolesResource, c.Roles)
	if err != nil {
		return err
	}
	if err := api.call(g.Ctx, http.MethodPut, userRolesPath(id), roles, nil); err != nil {
		return err
	}
	fmt.Fprintf(g.Stdout, "user %s now holds %d explicit role(s)\n", id, len(roles))
	return nil
}

type userSetPasswordCmd struct {
	ID            string `arg:"" name:"user" help:"Id or username."`
	PasswordStdin bool   `name:"password-stdin" help:"Read the password from the first line of standard input. Otherwise GATEHOUSE_NEW_PASSWORD, or a prompt on a terminal."`
}

func (c *userSetPasswordCmd) Run(g *Globals) error {
	pw, err := readPassword(g, c.PasswordStdin, "GATEHOUSE_NEW_PASSWORD", "New password: ")
	if err != nil {
		return err
	}
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	id, err := usersResource.resolve(g.Ctx, api, c.ID)
	if err != nil {
		return err
	}
	if err := api.call(g.Ctx, http.MethodPut, usersResource.item(id)+"/password", map[string]string{"password": pw}, nil); err != nil {
		return err
	}
	fmt.Fprintf(g.Stdout, "password of user %s changed\n", id)
	return nil
}

func setIf(m map[string]any, key, v string) {
	if v != "" {
		m[key] = v
	}
}

func setPtr[T any](m map[string]any, key string, v *T) {
	if v != nil {
		m[key] = *v
	}
}
