package cli

// clientCommands are the admin client subcommands that talk to a running server.
type clientCommands struct{}
