package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// cliClientID is the server's built-in public OAuth2 client for users (serviceapi.CLIClientID); it is repeated
// here so the client commands do not import the server.
const cliClientID = "gatehouse-cli"

// session is what `gatehouse login` caches in credentials.json: where the server is, how to trust it, and the
// tokens. The file is the only place the tokens live, so it is written 0600 in a 0700 directory.
type session struct {
	Server       string    `json:"server"`
	Username     string    `json:"username,omitempty"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry"`
	// CAFile is the PEM bundle the server's certificate must chain to; empty means the system roots.
	CAFile string `json:"ca_file,omitempty"`
	// Insecure turns certificate verification off; only `login --insecure` sets it.
	Insecure bool `json:"insecure,omitempty"`
}

// errNotLoggedIn is returned by commands that need a session when there is none.
var errNotLoggedIn = errors.New("not logged in; run `gatehouse login --server URL` first")

// configDir is the directory holding the CLI's files: os.UserConfigDir()/gatehouse ($XDG_CONFIG_HOME/gatehouse or
// ~/.config/gatehouse on Linux).
func configDir() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the user config dir: %w", err)
	}
	return filepath.Join(dir, "gatehouse"), nil
}

func sessionPath() (string, error) {
	dir, err := configDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "credentials.json"), nil
}

// loadSession reads the cached session; errNotLoggedIn if there is none.
func loadSession() (*session, error) {
	path, err := sessionPath()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNotLoggedIn
	}
	if err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	var s session
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("read credentials %s: %w", path, err)
	}
	if s.Server == "" || s.AccessToken == "" {
		return nil, errNotLoggedIn
	}
	return &s, nil
}

// save writes the session atomically (temporary file, then rename) so a crash never leaves half a file, and
// with mode 0600 from the first byte so the tokens are never readable by others.
func (s *session) save() error {
	path, err := sessionPath()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create config dir: %w", err)
	}
	// MkdirAll leaves an existing directory's mode alone; tighten it in case it was made by something else.
	if err := os.Chmod(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("restrict config dir: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode credentials: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".credentials-*.json")
	if err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write credentials: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write credentials: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	return nil
}

// removeSession deletes the cached session; a missing file is not an error.
func removeSession() error {
	path, err := sessionPath()
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove credentials: %w", err)
	}
	return nil
}

// httpClient builds the HTTP client that trusts what the session says: the CA file, the system roots, or (with
// --insecure) anything.
func (s *session) httpClient() (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case s.Insecure:
		tc.InsecureSkipVerify = true
	case s.CAFile != "":
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", s.CAFile)
		}
		tc.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	// The management API is reached directly; an HTTPS_PROXY set by `gatehouse env` for the data plane must not
	// send the CLI's own calls through the proxy.
	tr.Proxy = nil
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}, nil
}

// tokenResponse is the OAuth2 token endpoint's answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

// oauthError is the token endpoint's RFC 6749 error.
type oauthError struct {
	Status      int
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *oauthError) Error() string {
	msg := "login failed: " + e.Code
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return fmt.Sprintf("%s (HTTP %d)", msg, e.Status)
}

// grant posts a form to the token endpoint and stores the tokens it answers in s.
func (s *session) grant(ctx context.Context, hc *http.Client, form url.Values) error {
	form.Set("client_id", cliClientID)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Server+"/auth/api/v1/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("token request: %w", explainTLS(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("token request: %w", err)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		return fmt.Errorf("login refused: too many failed attempts; retry after %s seconds", resp.Header.Get("Retry-After"))
	}
	if resp.StatusCode != http.StatusOK {
		oe := &oauthError{Status: resp.StatusCode}
		if json.Unmarshal(b, oe) != nil || oe.Code == "" {
			oe.Code = strings.TrimSpace(string(b))
		}
		return oe
	}
	var tr tokenResponse
	if err := json.Unmarshal(b, &tr); err != nil || tr.AccessToken == "" {
		return fmt.Errorf("token request: unexpected answer from %s", s.Server)
	}
	s.AccessToken, s.RefreshToken = tr.AccessToken, tr.RefreshToken
	s.Expiry = time.Now().Add(time.Duration(tr.ExpiresIn) * time.Second)
	return nil
}

// refresh trades the refresh token for new tokens and saves them.
func (s *session) refresh(ctx context.Context, hc *http.Client) error {
	if s.RefreshToken == "" {
		return errors.New("the session has expired; run `gatehouse login` again")
	}
	if err := s.grant(ctx, hc, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {s.RefreshToken}}); err != nil {
		var oe *oauthError
		if errors.As(err, &oe) && oe.Code == "invalid_grant" {
			return errors.New("the session has expired; run `gatehouse login` again")
		}
		return err
	}
	return s.save()
}

// expired reports whether the access token is at or near its end; the margin covers clock skew and the time the
// request takes.
func (s *session) expired(now time.Time) bool {
	return !s.Expiry.IsZero() && now.Add(30*time.Second).After(s.Expiry)
}

// explainTLS adds the way out to a certificate error, which is what a first login against a self-issued
// certificate runs into.
func explainTLS(err error) error {
	var ua x509.UnknownAuthorityError
	var cv *tls.CertificateVerificationError
	if errors.As(err, &ua) || errors.As(err, &cv) {
		return fmt.Errorf("%w\n(the server's certificate is not trusted: pass --ca-file with the CA that issued it, "+
			"e.g. <data-dir>/ca/root.crt of a server using its own CA, or --insecure to skip verification)", err)
	}
	return err
}
