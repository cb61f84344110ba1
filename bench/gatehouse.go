package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

const benchAdminPassword = "Bench-admin-pass-1"

// buildGatehouse compiles the real binary, as an operator runs it.
func buildGatehouse(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	bin := filepath.Join(dir, "gatehouse")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/gatehouse")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, b)
	}
	return bin, nil
}

// gatehouseProc is `gatehouse serve` as a child process.
type gatehouseProc struct {
	*child
	apiAddr, proxyAddr string
	api                *http.Client
	token              string
	dataDir            string
	// roleID, userID and targetID are what configure created.
	roleID, userID, targetID string
	startup                  time.Duration // from exec to a healthy /healthz
}

// startGatehouse runs serve on dataDir and waits for /healthz.
func startGatehouse(ctx context.Context, cl *cleanups, bin, dataDir, logPath string) (*gatehouseProc, error) {
	addrs, err := freeAddrs(2)
	if err != nil {
		return nil, err
	}
	apiAddr, proxyAddr := addrs[0], addrs[1]
	start := time.Now()
	c, err := startChild(cl, "gatehouse", logPath, []string{"GATEHOUSE_ADMIN_PASSWORD=" + benchAdminPassword},
		bin, "serve", "--data-dir", dataDir, "--api-listen", apiAddr, "--proxy-listen", proxyAddr, "--log-level", "info",
		// The idle-tunnel run is 10,000 unauthenticated tunnels from one address, exactly what the default caps
		// evict; it measures what a tunnel costs, so the caps are lifted.
		"--proxy-max-conns=-1", "--proxy-max-conns-per-client=-1", "--proxy-max-unauthenticated=-1")
	if err != nil {
		return nil, err
	}
	g := &gatehouseProc{child: c, apiAddr: apiAddr, proxyAddr: proxyAddr, dataDir: dataDir}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if g.api == nil {
			if pemBytes, err := os.ReadFile(filepath.Join(dataDir, "ca", "root.crt")); err == nil {
				pool := x509.NewCertPool()
				if pool.AppendCertsFromPEM(pemBytes) {
					g.api = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 30 * time.Second}
				}
			}
		}
		if g.api != nil {
			if resp, err := g.api.Get("https://" + apiAddr + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					g.startup = time.Since(start)
					break
				}
			}
		}
		if c.exited() {
			return nil, fmt.Errorf("gatehouse exited during start:\n%s", c.tail())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("gatehouse did not become healthy:\n%s", c.tail())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return g, nil
}

func (g *gatehouseProc) login() error {
	form := url.Values{"grant_type": {"password"}, "client_id": {"gatehouse-cli"}, "username": {"admin"}, "password": {benchAdminPassword}}
	resp, err := g.api.PostForm("https://"+g.apiAddr+"/auth/api/v1/oauth/token", form)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil || out.AccessToken == "" {
		return fmt.Errorf("login: %d %s", resp.StatusCode, b)
	}
	g.token = out.AccessToken
	return nil
}

// call sends an admin request and decodes the answer into out (a *[]byte takes the raw body).
func (g *gatehouseProc) call(method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "https://"+g.apiAddr+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+g.token)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := g.api.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	switch o := out.(type) {
	case nil:
	case *[]byte:
		*o = b
	default:
		return json.Unmarshal(b, out)
	}
	return nil
}

// configure creates a user holding a role, one target for the origin (audited or not) and a proxy credential, and
// returns the credential's secret and the proxy CA clients must trust; the ids stay on g for later set-ups.
func (g *gatehouseProc) configure(originAddr string, originCA []byte, audit bool) (secret string, proxyCA *x509.CertPool, err error) {
	if err := g.login(); err != nil {
		return "", nil, err
	}
	var id struct {
		ID string `json:"id"`
	}
	if err := g.call("POST", "/role-store/api/v1/roles", map[string]any{"name": "bench", "permissions": []string{"api-proxy-credentials-own"}}, 201, &id); err != nil {
		return "", nil, err
	}
	role := id.ID
	if err := g.call("POST", "/local-user-store/api/v1/users", map[string]any{"username": "bench", "password": "Bench-user-pass-1234", "enabled": true}, 201, &id); err != nil {
		return "", nil, err
	}
	user := id.ID
	if err := g.call("PUT", "/role-store/api/v1/users/"+user+"/roles", []map[string]string{{"id": role}}, 200, nil); err != nil {
		return "", nil, err
	}
	if err := g.call("POST", "/api-proxy/api/v1/api-targets", map[string]any{
		"name": "origin", "roles": []map[string]string{{"id": role}}, "audit_enabled": audit,
		"tls_trust_anchors": string(originCA),
		"authorized_endpoints": []map[string]any{
			{"host": originAddr, "protocols": []string{"https"}, "methods": []string{"GET", "POST"}, "paths": []string{"/small", "/blob", "/upload"}},
		},
		"target_credential": map[string]any{"type": "token", "bearer_token": targetToken},
	}, 201, &id); err != nil {
		return "", nil, err
	}
	target := id.ID
	g.roleID, g.userID, g.targetID = role, user, target
	secret, err = g.credential(user, target, "bench")
	if err != nil {
		return "", nil, err
	}
	var conf struct {
		Chain string `json:"ca_certificate_chain"`
	}
	if err := g.call("GET", "/api-proxy/api/v1/conf", nil, 200, &conf); err != nil {
		return "", nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(conf.Chain)) {
		return "", nil, errors.New("no proxy CA in /conf")
	}
	return secret, pool, nil
}

// credential creates a proxy credential of user for target and returns its secret.
func (g *gatehouseProc) credential(user, target, name string) (string, error) {
	var id struct {
		ID string `json:"id"`
	}
	credPath := "/api-proxy/api/v1/users/" + user + "/client-credentials"
	if err := g.call("POST", credPath, map[string]any{"name": name, "target": map[string]string{"id": target}}, 201, &id); err != nil {
		return "", err
	}
	var raw []byte
	if err := g.call("GET", credPath+"/"+id.ID+"/secret", nil, 200, &raw); err != nil {
		return "", err
	}
	return strings.TrimSpace(string(raw)), nil
}

func ecdsaKey(k crypto.PrivateKey) (*ecdsa.PrivateKey, error) {
	if e, ok := k.(*ecdsa.PrivateKey); ok {
		return e, nil
	}
	return nil, errors.New("CA key is not ECDSA")
}
