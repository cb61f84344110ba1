package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The peers are the two interception proxies an operator could install from Debian instead: squid with ssl-bump
// and mitmproxy's mitmdump. Both are configured to do what Gatehouse does on the wire, and no more: intercept
// TLS, verify the origin against its CA, replace the client's Authorization with the target credential.

const certgen = "/usr/lib/squid/security_file_certgen"

// ensurePackages installs squid-openssl and mitmproxy with apt-get when their binaries are missing.
func ensurePackages(ctx context.Context) error {
	var missing []string
	if _, err := os.Stat(certgen); err != nil {
		missing = append(missing, "squid-openssl")
	} else if _, err := exec.LookPath("squid"); err != nil {
		missing = append(missing, "squid-openssl")
	}
	if _, err := exec.LookPath("mitmdump"); err != nil {
		missing = append(missing, "mitmproxy")
	}
	if len(missing) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("the peers need Debian packages %s; run as root so the benchmark can install them, or install them with: sudo apt-get install %s (or pass -peers=false)",
			strings.Join(missing, " "), strings.Join(missing, " "))
	}
	fmt.Fprintf(os.Stderr, "installing %s with apt-get...\n", strings.Join(missing, " "))
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, args := range [][]string{{"update", "-qq"}, append([]string{"install", "-y", "-qq", "--no-install-recommends"}, missing...)} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", args[0], err, out)
		}
	}
	// The package starts a system squid on port 3128; the benchmark runs its own and leaves that one alone.
	return nil
}

// peerVersion returns the first line of `bin --version`-style output, for the report.
func peerVersion(argv ...string) string {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// startSquid runs squid in the foreground (-N: one process, no kids besides its helpers) in ssl-bump mode.
func startSquid(ctx context.Context, cl *cleanups, dir string, ca *benchCA, originCAPath string) (*child, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	caCert, caKey := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	if err := ca.writeFiles(caCert, caKey); err != nil {
		return nil, "", err
	}
	sslDB := filepath.Join(dir, "ssl_db")
	if out, err := exec.CommandContext(ctx, certgen, "-c", "-s", sslDB, "-M", "16MB").CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("security_file_certgen -c: %w\n%s", err, out)
	}
	upstreamCA := filepath.Join(dir, "origin-ca.pem")
	if b, err := os.ReadFile(originCAPath); err != nil {
		return nil, "", err
	} else if err := os.WriteFile(upstreamCA, b, 0o644); err != nil {
		return nil, "", err
	}
	conf := fmt.Sprintf(`# Written by the Gatehouse benchmark: ssl-bump everything, verify the origin, replace Authorization, no cache.
http_port %s ssl-bump tls-cert=%s tls-key=%s generate-host-certificates=on dynamic_cert_mem_cache_size=16MB
sslcrtd_program %s -s %s -M 16MB
sslcrtd_children 4 startup=1 idle=1
acl step1 at_step SslBump1
# Peek at the client hello first, then bump: the generated certificate then mimics the origin's (its IP SAN too).
ssl_bump peek step1
ssl_bump bump all
tls_outgoing_options cafile=%s
acl benchclients src 127.0.0.0/8
http_access allow benchclients
http_access deny all
cache deny all
cache_mem 0 MB
request_header_access Authorization deny all
request_header_replace Authorization Bearer %s
via off
forwarded_for delete
access_log stdio:%s/access.log
cache_log %s/cache.log
pid_filename %s/squid.pid
coredump_dir %s
max_filedescriptors 65536
shutdown_lifetime 1 seconds
visible_hostname gatehouse-bench
`, addr, caCert, caKey, certgen, sslDB, upstreamCA, targetToken, dir, dir, dir, dir)
	confPath := filepath.Join(dir, "squid.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, "", err
	}
	// Squid drops root for its effective user (proxy on Debian), which must own its files.
	if os.Geteuid() == 0 {
		if u, err := user.Lookup("proxy"); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			_ = filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, uid, gid) })
		}
	}
	if out, err := exec.CommandContext(ctx, "squid", "-k", "parse", "-f", confPath).CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("squid -k parse: %w\n%s", err, out)
	}
	c, err := startChild(cl, "squid", filepath.Join(dir, "squid.out"), nil, "squid", "-N", "-f", confPath)
	if err != nil {
		return nil, "", err
	}
	if err := waitListening(ctx, c, addr, 30*time.Second); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "cache.log"))
		return nil, "", fmt.Errorf("%w\ncache.log:\n%s", err, b)
	}
	return c, addr, nil
}

// startMitmdump runs mitmdump in regular mode with upstream verification on (ssl_insecure stays false) against
// the origin's CA, and the Authorization header replaced. Large bodies are streamed, not buffered, as anyone
// proxying gigabyte bodies through it would configure.
func startMitmdump(ctx context.Context, cl *cleanups, dir, originCAPath string) (*child, string, *x509.CertPool, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", nil, err
	}
	host, port, _ := strings.Cut(addr, ":")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", nil, err
	}
	// modify_headers runs at the request hook, which for a streamed body fires only after the body has gone
	// upstream; the requestheaders hook replaces Authorization before anything is sent.
	addon := filepath.Join(dir, "replace_authorization.py")
	script := "def requestheaders(flow):\n    flow.request.headers[\"Authorization\"] = \"Bearer " + targetToken + "\"\n"
	if err := os.WriteFile(addon, []byte(script), 0o644); err != nil {
		return nil, "", nil, err
	}
	c, err := startChild(cl, "mitmdump", filepath.Join(dir, "mitmdump.out"), []string{"HOME=" + dir},
		"mitmdump", "--mode", "regular", "--listen-host", host, "--listen-port", port,
		"--set", "confdir="+dir,
		"--set", "ssl_insecure=false",
		"--set", "ssl_verify_upstream_trusted_ca="+originCAPath,
		"-s", addon,
		"--set", "stream_large_bodies=1m",
		"--set", "flow_detail=0",
		"-q")
	if err != nil {
		return nil, "", nil, err
	}
	if err := waitListening(ctx, c, addr, 60*time.Second); err != nil {
		return nil, "", nil, err
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "mitmproxy-ca-cert.pem"))
	if err != nil {
		return nil, "", nil, fmt.Errorf("mitmproxy CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, "", nil, errors.New("mitmproxy CA: no certificate")
	}
	return c, addr, pool, nil
}
