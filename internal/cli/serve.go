package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/serviceapi"
	"github.com/gatehouse-dev/gatehouse/internal/version"
)

type serveCmd struct {
	config.Config
}

func (c *serveCmd) Run(g *Globals) error {
	if err := c.Validate(); err != nil {
		// One line per setting at fault, each naming its flag.
		return &exitError{code: 2, msg: strings.ReplaceAll(err.Error(), "\n", "\ngatehouse: ")}
	}
	log := newLogger(g, c.LogLevel, c.LogFormat)
	serviceapi.Version = version.Version()
	srv, err := server.New(g.Ctx, &c.Config, server.Options{Log: log, Out: g.Stdout, AdminPassword: os.Getenv("GATEHOUSE_ADMIN_PASSWORD")})
	if err != nil {
		// Only the one line on stderr: a start-up failure is for the operator to read, not a log record to parse.
		return &exitError{code: 1, msg: "cannot start: " + err.Error()}
	}
	return srv.Serve(g.Ctx, nil)
}

func newLogger(g *Globals, level, format string) *slog.Logger {
	var lv slog.Level
	lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" {
		return slog.New(slog.NewTextHandler(g.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(g.Stderr, opts))
}

func (c *confDumpCmd) Run(g *Globals) error {
	if err := c.Validate(); err != nil {
		fmt.Fprintln(g.Stderr, "warning: the configuration does not validate:\n"+err.Error())
	}
	enc := json.NewEncoder(g.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(c.Masked())
}

// signalContext is cancelled on SIGINT or SIGTERM, which starts a graceful shutdown.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
