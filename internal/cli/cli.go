// Package cli is the gatehouse command line: the server (serve) and the admin client commands that drive a
// running server over its service API.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/alecthomas/kong"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/version"
)

// Globals are passed to every command's Run.
type Globals struct {
	Ctx context.Context
	// Stdin is where login reads a password from (--password-stdin or a terminal prompt).
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// root is the whole command tree.
type root struct {
	Config      string           `name:"config" env:"GATEHOUSE_CONFIG" type:"path" help:"YAML or TOML file with serve settings (keys are flag names)."`
	VersionFlag kong.VersionFlag `name:"version" help:"Print the version and exit."`
	Serve       serveCmd         `cmd:"" help:"Run the Gatehouse server: management API, proxy and web UI."`
	Version     versionCmd       `cmd:"" help:"Print the version."`
	// Extender is the agent run inside a remote segment; it talks to the gateway, not to the admin API.
	Extender extenderCmd `cmd:"" help:"Run an extender agent: dial out to the gateway and carry its connections into this network."`
	Conf     confCmd     `cmd:"" name:"config" help:"Inspect configuration."`
	DemoAPI  demoAPICmd  `cmd:"" name:"demo-api" help:"Serve a small HTTPS API to put behind Gatehouse (the README walk-through's target)."`
	clientCommands
}

type versionCmd struct{}

func (versionCmd) Run(g *Globals) error {
	fmt.Fprintln(g.Stdout, version.Get())
	return nil
}

type confCmd struct {
	Dump confDumpCmd `cmd:"" help:"Print the effective serve configuration (flags, env, file) with secrets masked."`
}

type confDumpCmd struct {
	config.Config
}

// Run is `gatehouse` with args (without the program name), reading standard input from os.Stdin. It returns the
// process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return RunWithStdin(ctx, args, os.Stdin, stdout, stderr)
}

// RunWithStdin is Run with standard input given, so tests can feed `login --password-stdin`.
func RunWithStdin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var cli root
	exit := -1
	opts := []kong.Option{
		kong.Name("gatehouse"),
		kong.Description("Gatehouse: a privileged-access gateway for HTTP and REST APIs.\n\nStart a server with `gatehouse serve`, then drive it with the client commands (login, users, roles, targets, credentials, env, ...)."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exit = code; panic(exitPanic{}) }),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Vars{"version": version.Get().String()},
		kong.Bind(&Globals{Ctx: ctx, Stdin: stdin, Stdout: stdout, Stderr: stderr}),
	}
	if path := config.ConfigPath(args); path != "" {
		r, err := config.FileResolver(path)
		if err != nil {
			fmt.Fprintln(stderr, "gatehouse:", err)
			return 2
		}
		opts = append(opts, kong.Resolvers(r))
	}
	parser, err := kong.New(&cli, opts...)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse:", err)
		return 2
	}
	code := func() (code int) {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(exitPanic); ok {
					code = exit
					return
				}
				panic(r)
			}
		}()
		kctx, err := parser.Parse(args)
		if err != nil {
			fmt.Fprintln(stderr, "gatehouse:", err)
			if len(args) == 0 {
				parser.Stdout = stderr
			}
			return 2
		}
		if err := kctx.Run(); err != nil {
			var ee *exitError
			if errors.As(err, &ee) {
				if ee.msg != "" {
					fmt.Fprintln(stderr, "gatehouse:", ee.msg)
				}
				return ee.code
			}
			fmt.Fprintln(stderr, "gatehouse:", err)
			return 1
		}
		return 0
	}()
	return code
}

type exitPanic struct{}

// exitError ends a command with a given exit code.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// Main is what cmd/gatehouse calls.
func Main() {
	ctx, stop := signalContext()
	code := Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
