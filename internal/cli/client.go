package cli

// clientCommands are the admin client subcommands that talk to a running server. They use the session that
// `gatehouse login` caches in the user config dir.
type clientCommands struct {
	Login       loginCmd       `cmd:"" group:"Client" help:"Log in to a Gatehouse server and cache the session."`
	Logout      logoutCmd      `cmd:"" group:"Client" help:"Forget the cached session."`
	Whoami      whoamiCmd      `cmd:"" group:"Client" help:"Show who the cached session belongs to and what it may do."`
	Users       usersCmd       `cmd:"" group:"Client" help:"Manage local users and their roles."`
	Roles       rolesCmd       `cmd:"" group:"Client" help:"Manage roles and their permissions."`
	APIClients  apiClientsCmd  `cmd:"" name:"api-clients" group:"Client" help:"Manage API clients (machine identities with OAuth2 credentials)."`
	Targets     targetsCmd     `cmd:"" group:"Client" help:"Manage API targets: the APIs Gatehouse guards."`
	Credentials credentialsCmd `cmd:"" group:"Client" help:"Manage proxy credentials: personal, time-boxed secrets for using a target."`
	Env         envCmd         `cmd:"" group:"Client" help:"Print shell exports that send HTTP clients through the proxy with a credential."`
	Connect     connectCmd     `cmd:"" group:"Client" help:"Forward a local plain-HTTP port to a target through the gateway with your credential."`
	Sessions    sessionsCmd    `cmd:"" group:"Client" help:"List, show and terminate the proxy's API sessions."`
	Trail       trailCmd       `cmd:"" group:"Client" help:"Read, export, follow and verify session trails."`
	Approvals   approvalsCmd   `cmd:"" group:"Client" help:"List, approve and reject API sessions waiting for an authorizer (four-eyes)."`
	Sources     sourcesCmd     `cmd:"" group:"Client" help:"Manage user sources (LDAP, AD, OIDC, ...), start syncs and see their status."`
	Hosts       hostsCmd       `cmd:"" group:"Client" help:"Manage the host store: hosts with their addresses, services and tags."`
	Extenders   extendersCmd   `cmd:"" group:"Client" help:"Manage extenders: agents that reach APIs in networks the gateway cannot route to."`
	Workflows   workflowsCmd   `cmd:"" group:"Client" help:"List workflows: the roles that can be requested for a time, and who approves."`
	Requests    requestsCmd    `cmd:"" group:"Client" help:"Request roles through workflows, decide on requests and revoke granted roles."`
}
