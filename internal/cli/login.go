package cli

import (
	"bufio"
	"bytes"
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

type loginCmd struct {
	Server        string `required:"" env:"GATEHOUSE_SERVER" placeholder:"URL" help:"Management API address, e.g. https://gatehouse.example.com:8443 (https:// is assumed)."`
	Username      string `short:"u" env:"GATEHOUSE_USERNAME" help:"User to log in as; asked for on a terminal when left out."`
	PasswordStdin bool   `name:"password-stdin" help:"Read the password from the first line of standard input. Without it the password comes from GATEHOUSE_PASSWORD, or is asked for on a terminal."`
	CAFile        string `name:"ca-file" xor:"trust" type:"existingfile" placeholder:"PEM" help:"Trust the server's certificate if it chains to a CA in this PEM file (for a server using its own CA: <data-dir>/ca/root.crt). Default: the system roots."`
	Insecure      bool   `help:"Do not verify the server's certificate. For throwaway test servers only: the password and tokens can be intercepted." xor:"trust"`
	OIDC          bool   `name:"oidc" help:"Log in through an OIDC identity provider in the browser instead of with a password."`
	Source        string `help:"With --oidc: the OIDC source (name or id) to log in through; needed when the server has several."`
	NoBrowser     bool   `name:"no-browser" help:"With --oidc: print the login address instead of opening a browser."`
	OTP           string `name:"otp" env:"GATEHOUSE_OTP" placeholder:"CODE" help:"Second-factor code (TOTP from your authenticator, or your RADIUS code) when your source requires one; asked for on a terminal when left out."`
	EnrolTOTP     bool   `name:"enrol-totp" help:"When the server asks for a TOTP authenticator to be enrolled first, enrol one without asking: print its otpauth:// URI and secret, then log in with --otp (or a prompt)."`
}

func (c *loginCmd) Help() string {
	return `Logs in with the OAuth2 password grant (client gatehouse-cli) and caches the server address, the trust choice
and the tokens in the user config dir (credentials.json, mode 0600). Later commands use that session and refresh
the access token when it expires.

With --oidc the login goes through an OIDC source in the browser: the CLI listens on a loopback port, opens the
server's login page (which sends the browser on to the identity provider), and redeems the code the browser brings
back with a PKCE verifier that never leaves the CLI.

The password is read from --password-stdin, else GATEHOUSE_PASSWORD, else asked for (without echo) when standard
input is a terminal.`
}

func (c *loginCmd) Run(g *Globals) error {
	if c.Insecure && c.CAFile != "" {
		return errors.New("--ca-file and --insecure contradict each other; pass one")
	}
	server, err := normalizeServer(c.Server)
	if err != nil {
		return err
	}
	s := &session{Server: server, Insecure: c.Insecure}
	if c.CAFile != "" {
		if s.CAFile, err = filepath.Abs(c.CAFile); err != nil {
			return fmt.Errorf("ca file: %w", err)
		}
	}
	hc, err := s.httpClient()
	if err != nil {
		return err
	}
	if c.OIDC {
		if err := c.loginOIDC(g, s, hc); err != nil {
			return err
		}
		return c.saved(g, s)
	}
	username := c.Username
	if username == "" {
		f, ok := g.Stdin.(*os.File)
		if !ok || !isTerminal(f) {
			return errors.New("--username is required when standard input is not a terminal")
		}
		fmt.Fprint(g.Stderr, "Username: ")
		line, err := bufio.NewReader(f).ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("read username: %w", err)
		}
		username = strings.TrimSpace(line)
	}
	password, err := readPassword(g, c.PasswordStdin, "GATEHOUSE_PASSWORD", "Password for "+username+": ")
	if err != nil {
		return err
	}
	if err := c.passwordLogin(g, s, hc, username, password); err != nil {
		return err
	}
	s.Username = username
	return c.saved(g, s)
}

// passwordLogin runs the password grant and, when the server asks for it, the second factor: a code from --otp,
// GATEHOUSE_OTP or a prompt, after enrolling a TOTP authenticator if the user has none yet.
func (c *loginCmd) passwordLogin(g *Globals, s *session, hc *http.Client, username, password string) error {
	form := func(otp string) url.Values {
		f := url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}
		if otp != "" {
			f.Set("otp", otp)
		}
		return f
	}
	err := s.grant(g.Ctx, hc, form(c.OTP))
	var oe *oauthError
	if !errors.As(err, &oe) || (oe.Code != "mfa_required" && oe.Code != "mfa_enrollment_required") {
		return err
	}
	term, isTerm := g.Stdin.(*os.File)
	interactive := isTerm && isTerminal(term)
	otp := c.OTP
	switch {
	case oe.Code == "mfa_required" && otp != "":
		return err // cannot happen: a code that is not accepted is invalid_grant
	case oe.Code == "mfa_enrollment_required":
		if !interactive && !c.EnrolTOTP {
			return errors.New("your source requires a TOTP authenticator and you have none yet: run `gatehouse login` on a terminal, or add --enrol-totp to enrol one and print its URI")
		}
		enr, err := enrolTOTP(g, s, hc, username, password)
		if err != nil {
			return err
		}
		out := g.Stderr
		if !interactive {
			out = g.Stdout
		}
		fmt.Fprintf(out, "Add this authenticator to your TOTP app (scan the URI as a QR code, or type the secret):\n\n    %s\n    secret: %s\n\n", enr.URI, enr.Secret)
		if !interactive {
			// A script cannot have read the new secret before this login: the code comes with the next one.
			return errors.New("enrolled: log in again with --otp CODE (or GATEHOUSE_OTP) using a code from the new authenticator")
		}
		otp = ""
	}
	if otp == "" {
		if !interactive {
			return errors.New("a second-factor code is required: pass --otp CODE or set GATEHOUSE_OTP")
		}
		fmt.Fprint(g.Stderr, "Second-factor code: ")
		line, err := readSecretLine(term)
		fmt.Fprintln(g.Stderr)
		if err != nil {
			return err
		}
		otp = strings.TrimSpace(line)
	}
	return s.grant(g.Ctx, hc, form(otp))
}

type totpEnrolment struct {
	URI    string `json:"otpauth_uri"`
	Secret string `json:"secret"`
}

// enrolTOTP asks the server for a new TOTP authenticator with the user's password.
func enrolTOTP(g *Globals, s *session, hc *http.Client, username, password string) (*totpEnrolment, error) {
	body := url.Values{"username": {username}, "password": {password}}.Encode()
	req, err := http.NewRequestWithContext(g.Ctx, http.MethodPost, s.Server+"/auth/api/v1/mfa/totp/enrol", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("totp enrolment: %w", explainTLS(err))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		var e struct {
			Message string `json:"error_message"`
		}
		json.Unmarshal(b, &e)
		return nil, fmt.Errorf("totp enrolment refused (HTTP %d): %s", resp.StatusCode, e.Message)
	}
	var enr totpEnrolment
	if err := json.Unmarshal(b, &enr); err != nil || enr.URI == "" {
		return nil, fmt.Errorf("totp enrolment: unexpected answer from %s", s.Server)
	}
	return &enr, nil
}

// saved writes the session and says so.
func (c *loginCmd) saved(g *Globals, s *session) error {
	if err := s.save(); err != nil {
		return err
	}
	path, _ := sessionPath()
	fmt.Fprintf(g.Stdout, "Logged in to %s as %s; session saved in %s\n", s.Server, s.Username, path)
	if s.Insecure {
		fmt.Fprintln(g.Stderr, "warning: the server's certificate is not verified (--insecure)")
	}
	return nil
}

// normalizeServer accepts host:port or an https URL and returns the URL without a trailing slash. Plain http is
// refused: the management API is HTTPS only, and the password would travel in clear.
func normalizeServer(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("--server %q is not a URL like https://host:8443", s)
	}
	if u.Scheme != "https" {
		return "", fmt.Errorf("--server must be an https:// URL; the management API does not speak plain HTTP")
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/"), nil
}

// readPassword reads a secret from the first line of standard input (fromStdin), the environment variable env, or
// a prompt on the terminal, in that order.
func readPassword(g *Globals, fromStdin bool, env, prompt string) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(g.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password from standard input: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", errors.New("standard input held no password")
		}
		return pw, nil
	}
	if pw := os.Getenv(env); pw != "" {
		return pw, nil
	}
	f, ok := g.Stdin.(*os.File)
	if !ok || !isTerminal(f) {
		return "", fmt.Errorf("no password: pass --password-stdin, set %s, or run on a terminal to be asked", env)
	}
	fmt.Fprint(g.Stderr, prompt)
	pw, err := readSecretLine(f)
	fmt.Fprintln(g.Stderr)
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", errors.New("empty password")
	}
	return pw, nil
}

type logoutCmd struct{}

func (logoutCmd) Help() string {
	return "Deletes the cached session. The refresh token stays valid on the server until it expires."
}

func (logoutCmd) Run(g *Globals) error {
	if err := removeSession(); err != nil {
		return err
	}
	fmt.Fprintln(g.Stdout, "Logged out")
	return nil
}

type whoamiCmd struct {
	outputFlags
}

func (c *whoamiCmd) Run(g *Globals) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	var raw []byte
	if raw, err = api.do(g.Ctx, request{method: "GET", path: "/auth/api/v1/users/current"}); err != nil {
		return err
	}
	if !c.json() {
		// Show where the session points alongside who it is, in the same aligned listing.
		head, _ := json.Marshal(map[string]string{"server": api.sess.Server, "token_expires": api.sess.Expiry.UTC().Format(time.RFC3339)})
		if rest := bytes.TrimSpace(raw); len(rest) > 2 && rest[0] == '{' {
			raw = append(append(head[:len(head)-1:len(head)-1], ','), rest[1:]...)
		}
	}
	return printObject(g.Stdout, c.outputFlags, raw)
}
