package cli

import (
	"fmt"
	"net/http"
)

// userMFACmd shows a user's second factor.
type userMFACmd struct {
	ID string `arg:"" name:"user" help:"Id or username."`
	outputFlags
}

func (c *userMFACmd) Run(g *Globals) error {
	return userMFACall(g, c.ID, http.MethodGet, "/mfa", c.outputFlags)
}

// userMFACall sends method to the user's MFA path (user by id or name) and prints the answer.
func userMFACall(g *Globals, user, method, path string, out outputFlags) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	id, err := usersResource.resolve(g.Ctx, api, user)
	if err != nil {
		return err
	}
	raw, err := api.do(g.Ctx, request{method: method, path: usersResource.item(id) + path})
	if err != nil {
		return err
	}
	return printObject(g.Stdout, out, raw)
}

// userEnrolTOTPCmd gives a user a new TOTP authenticator and prints it, for the admin to hand over.
type userEnrolTOTPCmd struct {
	ID string `arg:"" name:"user" help:"Id or username."`
	outputFlags
}

func (c *userEnrolTOTPCmd) Help() string {
	return `Replaces the user's TOTP authenticator with a new one and prints its otpauth:// URI and secret once. The
user's source must have mfa_type TOTP. The user's first login with one of its codes confirms it.`
}

func (c *userEnrolTOTPCmd) Run(g *Globals) error {
	return userMFACall(g, c.ID, http.MethodPost, "/mfa/totp", c.outputFlags)
}

// userResetMFACmd forgets a user's TOTP authenticator.
type userResetMFACmd struct {
	ID string `arg:"" name:"user" help:"Id or username."`
}

func (c *userResetMFACmd) Help() string {
	return "Forgets the user's TOTP authenticator; they enrol a new one at their next login (gatehouse login)."
}

func (c *userResetMFACmd) Run(g *Globals) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	id, err := usersResource.resolve(g.Ctx, api, c.ID)
	if err != nil {
		return err
	}
	if err := api.call(g.Ctx, http.MethodDelete, usersResource.item(id)+"/mfa", nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(g.Stdout, "second factor of user %s reset\n", id)
	return nil
}
