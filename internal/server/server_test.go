package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
)

func testConfig(t *testing.T) *config.Config {
	return &config.Config{DataDir: filepath.Join(t.TempDir(), "data"), APIListen: "127.0.0.1:0", ProxyListen: "127.0.0.1:0",
		TokenTTL: 30 * time.Minute, LogLevel: "info", LogFormat: "json"}
}

// run starts a server, waits for it to answer /healthz, and returns a stop function.
func run(t *testing.T, cfg *config.Config, opts Options) (*Server, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := New(ctx, cfg, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, nil) }()
	pool := x509.NewCertPool()
	pool.AddCert(srv.CA().Root())
	tlsConf := &tls.Config{RootCAs: pool}
	if cfg.APICert != "" {
		// A configured certificate is not from this server's CA; the test checks which certificate is served.
		tlsConf = &tls.Config{InsecureSkipVerify: true}
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}, Timeout: 5 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.Get("https://" + srv.APIAddr() + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.TrimSpace(string(body)) == "ok" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz never answered 200: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return srv, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
}

func TestFirstStartGeneratesAdminPasswordOnce(t *testing.T) {
	cfg := testConfig(t)
	var out bytes.Buffer
	_, stop := run(t, cfg, Options{Out: &out})
	stop()
	path := filepath.Join(cfg.DataDir, AdminPasswordFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v, want 0600", path, fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	pw := strings.TrimSpace(string(b))
	if len(pw) < 16 || !strings.Contains(out.String(), pw) {
		t.Fatalf("generated password %q not printed in %q", pw, out.String())
	}
	for _, f := range []string{"master.key", "gatehouse.db"} {
		if fi, err := os.Stat(filepath.Join(cfg.DataDir, f)); err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: %v mode %v; want no group/other access", f, err, fi.Mode().Perm())
		}
	}

	out.Reset()
	_, stop = run(t, cfg, Options{Out: &out})
	stop()
	if out.Len() != 0 {
		t.Errorf("second start printed %q; the password is shown only once", out.String())
	}
}

func TestAdminPasswordFromEnvironmentIsNotWritten(t *testing.T) {
	cfg := testConfig(t)
	var out bytes.Buffer
	srv, stop := run(t, cfg, Options{Out: &out, AdminPassword: "Given-pass-123"})
	defer stop()
	if _, err := os.Stat(filepath.Join(cfg.DataDir, AdminPasswordFile)); !os.IsNotExist(err) {
		t.Errorf("password file written although the password was given: %v", err)
	}
	if strings.Contains(out.String(), "Given-pass-123") {
		t.Error("the given password was printed")
	}
	u, err := srv.Store().UserByName(context.Background(), "admin")
	if err != nil || !u.Enabled {
		t.Fatalf("admin: %+v %v", u, err)
	}
	roles, _ := srv.Store().UserRoles(context.Background(), u.ID)
	if len(roles) != 1 || roles[0].Name != "superuser" || len(roles[0].Permissions) < 20 {
		t.Errorf("admin roles: %+v", roles)
	}
}

func TestExplicitAPICertificate(t *testing.T) {
	cfg := testConfig(t)
	// Issue a certificate from a first server's CA, then use it as the configured --api-cert of a second one.
	first, stop := run(t, cfg, Options{})
	cert, err := first.CA().ServerCertificate([]string{"127.0.0.1"})
	stop()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPEM, keyPEM := encodePair(t, cert)
	os.WriteFile(filepath.Join(dir, "c.pem"), certPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "k.pem"), keyPEM, 0o600)
	cfg2 := testConfig(t)
	cfg2.APICert, cfg2.APIKey = filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	srv, stop2 := run(t, cfg2, Options{})
	defer stop2()
	conn, err := tls.Dial("tcp", srv.APIAddr(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := conn.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(cert.Leaf.SerialNumber) != 0 {
		t.Errorf("served certificate serial %v, want the configured one %v", got, cert.Leaf.SerialNumber)
	}
}

// TestAdminPasswordOnExistingStoreWarns pins that GATEHOUSE_ADMIN_PASSWORD given for a data dir that already has
// users is neither applied nor ignored silently.
func TestAdminPasswordOnExistingStoreWarns(t *testing.T) {
	cfg := testConfig(t)
	_, stop := run(t, cfg, Options{AdminPassword: "First-pass-123"})
	stop()
	var logs bytes.Buffer
	srv, stop := run(t, cfg, Options{AdminPassword: "Second-pass-456", Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	u, err := srv.Store().UserByName(context.Background(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	stop() // the server writes no more logs
	if ok, _ := secrets.VerifyPassword(u.PasswordHash, "First-pass-123"); !ok {
		t.Error("the first-start password no longer works")
	}
	if !strings.Contains(logs.String(), `"level":"WARN","msg":"GATEHOUSE_ADMIN_PASSWORD is set but ignored`) {
		t.Errorf("no warning in the log:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "Second-pass-456") {
		t.Error("the password was logged")
	}
}
