// Package config defines the one Config that `gatehouse serve` runs with: built from flags, GATEHOUSE_*
// environment variables and an optional YAML or TOML file, in that order of precedence.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config is the server's configuration. The kong tags make each field a flag of `gatehouse serve` with an env twin
// GATEHOUSE_<FLAG>; the same names (with - or _) are the keys of the config file.
type Config struct {
	DataDir              string        `name:"data-dir" env:"GATEHOUSE_DATA_DIR" default:"./gatehouse-data" help:"Directory for the database, keys, CA and recordings."`
	APIListen            string        `name:"api-listen" env:"GATEHOUSE_API_LISTEN" default:":8443" help:"HTTPS address of the management API and web UI."`
	ProxyListen          string        `name:"proxy-listen" env:"GATEHOUSE_PROXY_LISTEN" default:":20080" help:"Address of the HTTP(S) proxy that clients point at."`
	MetricsListen        string        `name:"metrics-listen" env:"GATEHOUSE_METRICS_LISTEN" default:"" help:"Address for Prometheus /metrics (plain HTTP); empty disables."`
	DB                   string        `name:"db" env:"GATEHOUSE_DB" default:"" help:"Database: empty for SQLite in the data dir, or a postgres:// URL."`
	APICert              string        `name:"api-cert" env:"GATEHOUSE_API_CERT" default:"" type:"path" help:"PEM certificate for the API listener (default: issued by Gatehouse's own CA)."`
	APIKey               string        `name:"api-key" env:"GATEHOUSE_API_KEY" default:"" type:"path" help:"PEM private key for --api-cert."`
	MasterKeyFile        string        `name:"master-key-file" env:"GATEHOUSE_MASTER_KEY_FILE" default:"" type:"path" help:"File with the master key (default: <data-dir>/master.key, created on first start)."`
	MasterKey            string        `name:"master-key" env:"GATEHOUSE_MASTER_KEY" default:"" help:"The master key itself (base64 or hex, 32 bytes); prefer the env variable." json:"-"`
	TokenTTL             time.Duration `name:"token-ttl" env:"GATEHOUSE_TOKEN_TTL" default:"30m" help:"Lifetime of OAuth2 access tokens."`
	ProxyProtocolTrusted []string      `name:"proxy-protocol-trusted" env:"GATEHOUSE_PROXY_PROTOCOL_TRUSTED" sep:"," help:"CIDRs of load balancers allowed to send a PROXY protocol header."`
	// Resource limits (see the README's security model). Zero picks the default; for the connection caps that
	// default is derived from RLIMIT_NOFILE (limits.DefaultsFor), and -1 lifts the cap.
	ProxyMaxConns           int           `name:"proxy-max-conns" env:"GATEHOUSE_PROXY_MAX_CONNS" default:"0" help:"Client connections the proxy holds at once (0: 40% of RLIMIT_NOFILE; -1: no cap). Beyond it the oldest unauthenticated connection is closed, or the new one refused."`
	ProxyMaxConnsPerClient  int           `name:"proxy-max-conns-per-client" env:"GATEHOUSE_PROXY_MAX_CONNS_PER_CLIENT" default:"0" help:"Proxy connections of one client address (0: a quarter of --proxy-max-conns; -1: no cap)."`
	ProxyMaxUnauthenticated int           `name:"proxy-max-unauthenticated" env:"GATEHOUSE_PROXY_MAX_UNAUTHENTICATED" default:"0" help:"Proxy connections and tunnels that have not presented a valid credential; the oldest is closed beyond it (0: half of --proxy-max-conns, at most 65536; -1: no cap)."`
	APIMaxConns             int           `name:"api-max-conns" env:"GATEHOUSE_API_MAX_CONNS" default:"0" help:"Connections the management API holds at once, a budget apart from the proxy's (0: 10% of RLIMIT_NOFILE; -1: no cap)."`
	APIMaxConnsPerClient    int           `name:"api-max-conns-per-client" env:"GATEHOUSE_API_MAX_CONNS_PER_CLIENT" default:"0" help:"Management API connections of one client address (0: a quarter of --api-max-conns; -1: no cap)."`
	ChunkedBufferBudget     int64         `name:"chunked-buffer-budget" env:"GATEHOUSE_CHUNKED_BUFFER_BUDGET" default:"67108864" help:"Bytes of chunked request bodies buffered at once across all requests; beyond it bodies are streamed (-1: no budget)."`
	BodyReadTimeout         time.Duration `name:"body-read-timeout" env:"GATEHOUSE_BODY_READ_TIMEOUT" default:"30s" help:"Longest wait for each read of a request body before the request is refused with 408."`
	TLSHandshakeTimeout     time.Duration `name:"tls-handshake-timeout" env:"GATEHOUSE_TLS_HANDSHAKE_TIMEOUT" default:"10s" help:"Longest TLS handshake with a client (intercepted tunnels) or a target."`
	LeafMintsPerSecond      float64       `name:"leaf-mints-per-second" env:"GATEHOUSE_LEAF_MINTS_PER_SECOND" default:"50" help:"Leaf certificates minted per second for intercepted hosts, with bursts of twice as many; cached leaves do not count (0: no limit)."`
	ApprovalWait            time.Duration `name:"approval-wait" env:"GATEHOUSE_APPROVAL_WAIT" default:"30s" help:"How long the first request of an API session that needs approval (access_control authorize) is held for a decision before it is refused as pending."`
	ApprovalTimeout         time.Duration `name:"approval-timeout" env:"GATEHOUSE_APPROVAL_TIMEOUT" default:"15m" help:"How long an approval request stays pending before it expires; the session is then refused for good."`
	NodeTimeout             time.Duration `name:"node-timeout" env:"GATEHOUSE_NODE_TIMEOUT" default:"10s" help:"In a cluster: how long a node's heartbeat may be missing before the other nodes close its sessions."`
	DBMaxConns              int           `name:"db-max-conns" env:"GATEHOUSE_DB_MAX_CONNS" default:"0" help:"PostgreSQL: connections of this node's query pool; a query beyond them waits for one as long as its request may (0: 4 per GOMAXPROCS, at least 4). The change feed and leadership hold one connection each on top."`
	DBMaxIdleConns          int           `name:"db-max-idle-conns" env:"GATEHOUSE_DB_MAX_IDLE_CONNS" default:"0" help:"PostgreSQL: pooled connections kept open while idle (0: as many as --db-max-conns)."`
	DBConnMaxLifetime       time.Duration `name:"db-conn-max-lifetime" env:"GATEHOUSE_DB_CONN_MAX_LIFETIME" default:"0" help:"PostgreSQL: a pooled connection is closed this long after it opened, once its query ends (0: 30m)."`
	ShutdownGrace           time.Duration `name:"shutdown-grace" env:"GATEHOUSE_SHUTDOWN_GRACE" default:"15s" help:"On SIGTERM, how long requests in flight may take to finish before they are cut off (0: 15s)."`
	LogLevel                string        `name:"log-level" env:"GATEHOUSE_LOG_LEVEL" default:"info" enum:"debug,info,warn,error" help:"Log level: debug, info, warn, error."`
	LogFormat               string        `name:"log-format" env:"GATEHOUSE_LOG_FORMAT" default:"json" enum:"json,text" help:"Log format: json or text."`
	AuditExport
}

// DatabaseDSN is the DSN the store opens: the --db value, or the SQLite file in the data dir.
func (c *Config) DatabaseDSN() string {
	if c.DB != "" {
		return c.DB
	}
	return filepath.Join(c.DataDir, "gatehouse.db")
}

// MasterKeyPath is where the master key file is read or created.
func (c *Config) MasterKeyPath() string {
	if c.MasterKeyFile != "" {
		return c.MasterKeyFile
	}
	return filepath.Join(c.DataDir, "master.key")
}

// TrustedPrefixes parses ProxyProtocolTrusted; Validate has checked it.
func (c *Config) TrustedPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range c.ProxyProtocolTrusted {
		if p, err := parsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Validate checks every field and names the one at fault.
func (c *Config) Validate() error {
	var errs []error
	bad := func(flag, msg string) { errs = append(errs, fmt.Errorf("--%s: %s", flag, msg)) }
	if c.DataDir == "" {
		bad("data-dir", "must not be empty")
	}
	for _, l := range []struct{ flag, addr string }{{"api-listen", c.APIListen}, {"proxy-listen", c.ProxyListen}, {"metrics-listen", c.MetricsListen}} {
		if l.addr == "" && l.flag == "metrics-listen" {
			continue
		}
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			bad(l.flag, fmt.Sprintf("%q is not host:port (%v)", l.addr, err))
		}
	}
	if c.DB != "" && !strings.HasPrefix(c.DB, "postgres://") && !strings.HasPrefix(c.DB, "postgresql://") && !strings.HasSuffix(c.DB, ".db") {
		bad("db", "must be a postgres:// URL or a SQLite file path ending in .db")
	}
	if (c.APICert == "") != (c.APIKey == "") {
		bad("api-cert", "--api-cert and --api-key go together")
	}
	for _, f := range []struct{ flag, path string }{{"api-cert", c.APICert}, {"api-key", c.APIKey}} {
		if f.path != "" {
			if _, err := os.Stat(f.path); err != nil {
				bad(f.flag, err.Error())
			}
		}
	}
	if c.ApprovalWait < 0 || c.ApprovalWait > 10*time.Minute {
		bad("approval-wait", "must be between 0 (the default, 30s) and 10m")
	}
	if c.ApprovalTimeout < 0 || c.ApprovalTimeout > 7*24*time.Hour {
		bad("approval-timeout", "must be between 0 (the default, 15m) and 168h")
	}
	if c.TokenTTL < time.Minute || c.TokenTTL > 24*time.Hour {
		bad("token-ttl", "must be between 1m and 24h")
	}
	for _, l := range []struct {
		flag string
		v    int
	}{{"proxy-max-conns", c.ProxyMaxConns}, {"proxy-max-conns-per-client", c.ProxyMaxConnsPerClient},
		{"proxy-max-unauthenticated", c.ProxyMaxUnauthenticated}, {"api-max-conns", c.APIMaxConns},
		{"api-max-conns-per-client", c.APIMaxConnsPerClient}} {
		if l.v < -1 {
			bad(l.flag, "must be a count, 0 for the default or -1 for no cap")
		}
	}
	if c.ChunkedBufferBudget < -1 || c.ChunkedBufferBudget > 0 && c.ChunkedBufferBudget < 64<<10 {
		bad("chunked-buffer-budget", "must be at least 65536 bytes, 0 for the default or -1 for no budget")
	}
	if c.BodyReadTimeout < 0 || c.BodyReadTimeout > 0 && c.BodyReadTimeout < 100*time.Millisecond {
		bad("body-read-timeout", "must be at least 100ms (0 for the default)")
	}
	if c.TLSHandshakeTimeout < 0 || c.TLSHandshakeTimeout > 0 && c.TLSHandshakeTimeout < 100*time.Millisecond {
		bad("tls-handshake-timeout", "must be at least 100ms (0 for the default)")
	}
	if c.LeafMintsPerSecond < 0 {
		bad("leaf-mints-per-second", "must not be negative (0 for no limit)")
	}
	if c.NodeTimeout != 0 && (c.NodeTimeout < 2*time.Second || c.NodeTimeout > 10*time.Minute) {
		bad("node-timeout", "must be between 2s and 10m")
	}
	pg := strings.HasPrefix(c.DB, "postgres://") || strings.HasPrefix(c.DB, "postgresql://")
	for _, f := range []struct {
		flag string
		set  bool
	}{{"db-max-conns", c.DBMaxConns != 0}, {"db-max-idle-conns", c.DBMaxIdleConns != 0}, {"db-conn-max-lifetime", c.DBConnMaxLifetime != 0}} {
		if f.set && !pg {
			bad(f.flag, "applies only to PostgreSQL (--db postgres://...); SQLite has no connection pool to size")
		}
	}
	if c.DBMaxConns < 0 || c.DBMaxConns > 10000 {
		bad("db-max-conns", "must be between 1 and 10000 (0 for the default)")
	}
	if c.DBMaxIdleConns < 0 || c.DBMaxConns > 0 && c.DBMaxIdleConns > c.DBMaxConns {
		bad("db-max-idle-conns", "must be between 1 and --db-max-conns (0 for as many)")
	}
	if c.DBConnMaxLifetime < 0 || c.DBConnMaxLifetime > 0 && c.DBConnMaxLifetime < time.Second {
		bad("db-conn-max-lifetime", "must be at least 1s (0 for the default, 30m)")
	}
	if c.ShutdownGrace < 0 || c.ShutdownGrace > time.Hour {
		bad("shutdown-grace", "must be between 0 (the default, 15s) and 1h")
	}
	for _, s := range c.ProxyProtocolTrusted {
		if _, err := parsePrefix(s); err != nil {
			bad("proxy-protocol-trusted", fmt.Sprintf("%q is not an IP or CIDR", s))
		}
	}
	c.AuditExport.validate(bad)
	return errors.Join(errs...)
}

// Masked returns the configuration as a map for `gatehouse config dump`, with secrets replaced by a marker.
func (c *Config) Masked() map[string]any {
	mask := func(s string) string {
		if s == "" {
			return ""
		}
		return "********"
	}
	db := c.DB
	if i := strings.Index(db, "://"); i >= 0 {
		if at := strings.Index(db[i+3:], "@"); at >= 0 {
			userinfo := db[i+3 : i+3+at]
			if u, _, ok := strings.Cut(userinfo, ":"); ok {
				db = db[:i+3] + u + ":********" + db[i+3+at:]
			}
		}
	}
	database := db
	if database == "" {
		database = c.DatabaseDSN()
	}
	m := map[string]any{
		"data-dir": c.DataDir, "api-listen": c.APIListen, "proxy-listen": c.ProxyListen,
		"metrics-listen": c.MetricsListen, "db": db, "database": database, "api-cert": c.APICert,
		"api-key": c.APIKey, "master-key-file": c.MasterKeyPath(), "master-key": mask(c.MasterKey),
		"token-ttl": c.TokenTTL.String(), "proxy-protocol-trusted": c.ProxyProtocolTrusted,
		"log-level": c.LogLevel, "log-format": c.LogFormat,
		"proxy-max-conns": c.ProxyMaxConns, "proxy-max-conns-per-client": c.ProxyMaxConnsPerClient,
		"proxy-max-unauthenticated": c.ProxyMaxUnauthenticated, "api-max-conns": c.APIMaxConns,
		"api-max-conns-per-client": c.APIMaxConnsPerClient, "chunked-buffer-budget": c.ChunkedBufferBudget,
		"body-read-timeout": c.BodyReadTimeout.String(), "tls-handshake-timeout": c.TLSHandshakeTimeout.String(),
		"leaf-mints-per-second": c.LeafMintsPerSecond,
		"node-timeout":          c.NodeTimeout.String(),
		"shutdown-grace":        c.ShutdownGrace.String(),
		"db-max-conns":          c.DBMaxConns, "db-max-idle-conns": c.DBMaxIdleConns,
		"db-conn-max-lifetime": c.DBConnMaxLifetime.String(),
	}
	c.AuditExport.masked(m)
	return m
}
