package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
)

type cli struct {
	Config string `name:"config"`
	Serve  struct {
		Config
	} `cmd:""`
}

func parse(t *testing.T, file string, args ...string) (*Config, error) {
	t.Helper()
	var c cli
	opts := []kong.Option{kong.Exit(func(int) { t.Fatal("exit") })}
	if file != "" {
		r, err := FileResolver(file)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kong.Resolvers(r))
	}
	p, err := kong.New(&c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse(append([]string{"serve"}, args...)); err != nil {
		return nil, err
	}
	return &c.Serve.Config, nil
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	yml := filepath.Join(dir, "g.yaml")
	os.WriteFile(yml, []byte("data-dir: /from/file\nproxy_listen: 127.0.0.1:1111\napi-listen: 127.0.0.1:2222\ntoken-ttl: 45m\nproxy-protocol-trusted: [10.0.0.1, 10.1.0.0/16]\n"), 0o600)
	toml := filepath.Join(dir, "g.toml")
	os.WriteFile(toml, []byte("data-dir = \"/from/toml\"\n"), 0o600)

	t.Run("defaults", func(t *testing.T) {
		c, err := parse(t, "")
		if err != nil {
			t.Fatal(err)
		}
		if c.DataDir != "./gatehouse-data" || c.APIListen != ":8443" || c.ProxyListen != ":20080" || c.TokenTTL != 30*time.Minute {
			t.Errorf("defaults: %+v", c)
		}
		if c.ProxyMaxConns != 0 || c.APIMaxConns != 0 || c.ChunkedBufferBudget != 64<<20 || c.BodyReadTimeout != 30*time.Second ||
			c.TLSHandshakeTimeout != 10*time.Second || c.LeafMintsPerSecond != 50 {
			t.Errorf("limit defaults: %+v", c)
		}
		if c.DatabaseDSN() != filepath.Join("./gatehouse-data", "gatehouse.db") || c.MasterKeyPath() != filepath.Join("./gatehouse-data", "master.key") {
			t.Errorf("derived paths: %s %s", c.DatabaseDSN(), c.MasterKeyPath())
		}
	})
	t.Run("file", func(t *testing.T) {
		c, err := parse(t, yml)
		if err != nil {
			t.Fatal(err)
		}
		if c.DataDir != "/from/file" || c.ProxyListen != "127.0.0.1:1111" || c.TokenTTL != 45*time.Minute || len(c.ProxyProtocolTrusted) != 2 {
			t.Errorf("file: %+v", c)
		}
	})
	t.Run("toml", func(t *testing.T) {
		c, err := parse(t, toml)
		if err != nil || c.DataDir != "/from/toml" {
			t.Errorf("toml: %+v %v", c, err)
		}
	})
	t.Run("env beats file", func(t *testing.T) {
		t.Setenv("GATEHOUSE_DATA_DIR", "/from/env")
		c, err := parse(t, yml)
		if err != nil || c.DataDir != "/from/env" || c.APIListen != "127.0.0.1:2222" {
			t.Errorf("env: %+v %v", c, err)
		}
	})
	t.Run("flag beats env", func(t *testing.T) {
		t.Setenv("GATEHOUSE_DATA_DIR", "/from/env")
		c, err := parse(t, yml, "--data-dir", "/from/flag")
		if err != nil || c.DataDir != "/from/flag" {
			t.Errorf("flag: %+v %v", c, err)
		}
	})
	t.Run("limits from env", func(t *testing.T) {
		t.Setenv("GATEHOUSE_PROXY_MAX_CONNS_PER_CLIENT", "7")
		t.Setenv("GATEHOUSE_BODY_READ_TIMEOUT", "5s")
		c, err := parse(t, "", "--api-max-conns=-1")
		if err != nil || c.ProxyMaxConnsPerClient != 7 || c.BodyReadTimeout != 5*time.Second || c.APIMaxConns != -1 {
			t.Errorf("limits: %+v %v", c, err)
		}
	})
	t.Run("unknown key in file", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.yaml")
		os.WriteFile(bad, []byte("data-dri: x\n"), 0o600)
		if _, err := parse(t, bad); err == nil || !strings.Contains(err.Error(), "data-dri") {
			t.Errorf("unknown key: %v", err)
		}
	})
	t.Run("unknown format", func(t *testing.T) {
		if _, err := FileResolver(filepath.Join(dir, "g.ini")); err == nil {
			t.Error("want an error for .ini")
		}
	})
}

func TestValidate(t *testing.T) {
	good := func() Config {
		return Config{DataDir: "d", APIListen: ":8443", ProxyListen: ":20080", TokenTTL: 30 * time.Minute, ShutdownGrace: 15 * time.Second}
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		flag   string
	}{
		{"ok", func(*Config) {}, ""},
		{"empty data dir", func(c *Config) { c.DataDir = "" }, "--data-dir"},
		{"bad api listen", func(c *Config) { c.APIListen = "8443" }, "--api-listen"},
		{"bad proxy listen", func(c *Config) { c.ProxyListen = "nope" }, "--proxy-listen"},
		{"bad metrics listen", func(c *Config) { c.MetricsListen = "x" }, "--metrics-listen"},
		{"bad db", func(c *Config) { c.DB = "mysql://x" }, "--db"},
		{"cert without key", func(c *Config) { c.APICert = "/nonexistent.pem" }, "--api-cert"},
		{"ttl too short", func(c *Config) { c.TokenTTL = time.Second }, "--token-ttl"},
		{"negative shutdown grace", func(c *Config) { c.ShutdownGrace = -time.Second }, "--shutdown-grace"},
		{"shutdown grace too long", func(c *Config) { c.ShutdownGrace = 2 * time.Hour }, "--shutdown-grace"},
		{"bad trusted cidr", func(c *Config) { c.ProxyProtocolTrusted = []string{"10.0.0.0/33"} }, "--proxy-protocol-trusted"},
		{"no proxy cap", func(c *Config) { c.ProxyMaxConns = -1 }, ""},
		{"proxy cap below -1", func(c *Config) { c.ProxyMaxConns = -2 }, "--proxy-max-conns"},
		{"per-client cap below -1", func(c *Config) { c.ProxyMaxConnsPerClient = -5 }, "--proxy-max-conns-per-client"},
		{"unauthenticated cap below -1", func(c *Config) { c.ProxyMaxUnauthenticated = -3 }, "--proxy-max-unauthenticated"},
		{"api cap below -1", func(c *Config) { c.APIMaxConns = -2 }, "--api-max-conns"},
		{"api per-client cap below -1", func(c *Config) { c.APIMaxConnsPerClient = -2 }, "--api-max-conns-per-client"},
		{"tiny chunked budget", func(c *Config) { c.ChunkedBufferBudget = 100 }, "--chunked-buffer-budget"},
		{"tiny body timeout", func(c *Config) { c.BodyReadTimeout = time.Millisecond }, "--body-read-timeout"},
		{"negative handshake timeout", func(c *Config) { c.TLSHandshakeTimeout = -time.Second }, "--tls-handshake-timeout"},
		{"negative mint rate", func(c *Config) { c.LeafMintsPerSecond = -1 }, "--leaf-mints-per-second"},
		{"pool on postgres", func(c *Config) {
			c.DB, c.DBMaxConns, c.DBMaxIdleConns, c.DBConnMaxLifetime = "postgres://db/gh", 8, 2, time.Hour
		}, ""},
		{"pool on sqlite", func(c *Config) { c.DBMaxConns = 8 }, "--db-max-conns"},
		{"idle pool on sqlite", func(c *Config) { c.DBMaxIdleConns = 2 }, "--db-max-idle-conns"},
		{"lifetime on sqlite", func(c *Config) { c.DBConnMaxLifetime = time.Hour }, "--db-conn-max-lifetime"},
		{"negative pool", func(c *Config) { c.DB, c.DBMaxConns = "postgres://db/gh", -1 }, "--db-max-conns"},
		{"idle above max", func(c *Config) { c.DB, c.DBMaxConns, c.DBMaxIdleConns = "postgres://db/gh", 4, 5 }, "--db-max-idle-conns"},
		{"tiny lifetime", func(c *Config) { c.DB, c.DBConnMaxLifetime = "postgres://db/gh", time.Millisecond }, "--db-conn-max-lifetime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.mutate(&c)
			err := c.Validate()
			if tt.flag == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.flag) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tt.flag)
			}
		})
	}
}

func TestMaskedHidesSecrets(t *testing.T) {
	c := Config{DataDir: "d", DB: "postgres://gh:hunter2-secret@db.example:5432/gh", MasterKey: "bWFzdGVyLWtleS1zZWNyZXQ="}
	m := c.Masked()
	for k, v := range m {
		s, _ := v.(string)
		if strings.Contains(s, "hunter2-secret") || strings.Contains(s, "bWFzdGVyLWtleS1zZWNyZXQ=") {
			t.Errorf("%s shows a secret: %s", k, s)
		}
	}
	if m["db"] != "postgres://gh:********@db.example:5432/gh" {
		t.Errorf("db = %v", m["db"])
	}
	if m["master-key"] != "********" {
		t.Errorf("master-key = %v", m["master-key"])
	}
}

func TestTrustedPrefixes(t *testing.T) {
	c := Config{ProxyProtocolTrusted: []string{"10.0.0.1", "192.168.0.0/16", "::1"}}
	got := c.TrustedPrefixes()
	if len(got) != 3 || got[0].String() != "10.0.0.1/32" || got[2].String() != "::1/128" {
		t.Errorf("TrustedPrefixes = %v", got)
	}
}
