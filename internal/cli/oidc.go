package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/secrets"
)

// oidcWait bounds how long `login --oidc` waits for the browser to come back.
const oidcWait = 5 * time.Minute

// oidcSource is an entry of GET /auth/api/v1/oidc/sources.
type oidcSource struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	ButtonTitle string `json:"button_title"`
}

// findOIDCSource picks the source named (by name or id) name, or the only one when name is empty.
func findOIDCSource(ctx context.Context, hc *http.Client, server, name string) (*oidcSource, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+"/auth/api/v1/oidc/sources", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("list OIDC sources: %w", explainTLS(err))
	}
	defer resp.Body.Close()
	var list struct {
		Items []oidcSource `json:"items"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&list) != nil {
		return nil, fmt.Errorf("list OIDC sources: the server answered %s", resp.Status)
	}
	var names []string
	for i, s := range list.Items {
		if name != "" && (strings.EqualFold(s.Name, name) || s.ID == name) {
			return &list.Items[i], nil
		}
		names = append(names, s.Name)
	}
	switch {
	case len(list.Items) == 0:
		return nil, errors.New("the server has no enabled OIDC source")
	case name == "" && len(list.Items) == 1:
		return &list.Items[0], nil
	case name == "":
		return nil, fmt.Errorf("pass --source; the server has several OIDC sources: %s", strings.Join(names, ", "))
	}
	return nil, fmt.Errorf("no enabled OIDC source %q; the server has: %s", name, strings.Join(names, ", "))
}

// loginOIDC logs in through an OIDC source: it listens on a loopback port, sends the browser to the server's
// login endpoint with its own state and PKCE challenge, receives a Gatehouse code on the loopback redirect and
// redeems it with the verifier. The provider's client secret never leaves the server, and the code is useless
// to anyone without the verifier, which never leaves this process.
func (c *loginCmd) loginOIDC(g *Globals, s *session, hc *http.Client) error {
	ctx, cancel := context.WithTimeout(g.Ctx, oidcWait)
	defer cancel()
	src, err := findOIDCSource(ctx, hc, s.Server, c.Source)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for the browser's return: %w", err)
	}
	defer ln.Close()
	redirect := "http://" + ln.Addr().String() + "/callback"
	state, verifier := secrets.RandomToken(24), oauth2.GenerateVerifier()
	start := s.Server + "/auth/api/v1/oidc/" + url.PathEscape(src.ID) + "/login?" + url.Values{
		"redirect_uri": {redirect}, "state": {state},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
	}.Encode()

	type result struct {
		code string
		err  error
	}
	done := make(chan result, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		res := result{code: q.Get("code")}
		switch {
		case !secrets.Equal(q.Get("state"), state):
			// Not our login (a stale tab, or a page trying to slip in its own code): ignore it and keep waiting.
			http.Error(w, "This is not the login the CLI is waiting for.", http.StatusBadRequest)
			return
		case q.Get("error") != "":
			res.err = fmt.Errorf("the server refused the login: %s", q.Get("error"))
		case res.code == "":
			res.err = errors.New("the browser came back without a code")
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		msg := "Logged in to " + s.Server + ". You can close this window."
		if res.err != nil {
			msg = "Login failed: " + res.err.Error()
		}
		fmt.Fprintf(w, "<!doctype html><title>Gatehouse</title><p>%s</p>\n", html.EscapeString(msg))
		select {
		case done <- res:
		default:
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	fmt.Fprintf(g.Stderr, "Log in with %s in your browser:\n  %s\n", src.ButtonTitle, start)
	if !c.NoBrowser {
		if err := openBrowser(start); err != nil {
			fmt.Fprintln(g.Stderr, "(could not open a browser; open the address above yourself)")
		}
	}
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		return errors.New("gave up waiting for the browser to finish the login")
	}
	if res.err != nil {
		return res.err
	}
	if err := s.grant(ctx, hc, url.Values{"grant_type": {"authorization_code"}, "code": {res.code},
		"code_verifier": {verifier}, "redirect_uri": {redirect}}); err != nil {
		return err
	}
	name, err := currentUsername(ctx, hc, s)
	if err != nil {
		return err
	}
	s.Username = name
	return nil
}

// currentUsername asks the server whom the session's access token is for.
func currentUsername(ctx context.Context, hc *http.Client, s *session) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Server+"/auth/api/v1/users/current", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+s.AccessToken)
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("current user: %w", err)
	}
	defer resp.Body.Close()
	var me struct {
		Username string `json:"username"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&me) != nil {
		return "", fmt.Errorf("current user: the server answered %s", resp.Status)
	}
	return me.Username, nil
}

// openBrowser asks the desktop to open u.
func openBrowser(u string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	return nil
}
