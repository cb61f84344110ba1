package directory

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// oidcTimeout bounds each exchange with a provider (discovery, keys, token, userinfo).
const oidcTimeout = 15 * time.Second

// OIDCParams are the per-login values that tie a provider's answer to the login that asked for it. The caller
// makes them fresh for each login and keeps them where only the browser that started it can bring them back.
type OIDCParams struct {
	// State is echoed by the provider to the callback; the caller compares it.
	State string
	// Nonce must come back inside the ID token.
	Nonce string
	// Verifier is the PKCE code verifier; its S256 challenge goes to the provider with the authorization request.
	Verifier string
	// RedirectURL is where the provider sends the browser back: the same in the request and the exchange.
	RedirectURL string
}

// OIDCButton is an OIDC source as a login page offers it.
type OIDCButton struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	ButtonTitle string `json:"button_title"`
}

// OIDCButtons lists the enabled OIDC sources, for a login page or `gatehouse login --oidc --source NAME`.
func (d *Directory) OIDCButtons(ctx context.Context) ([]OIDCButton, error) {
	stored, err := d.Store.ListSources(ctx)
	if err != nil {
		return nil, err
	}
	out := []OIDCButton{}
	for _, st := range stored {
		if st.Type != TypeOIDC || !st.Enabled {
			continue
		}
		src, err := FromStored(st)
		if err != nil {
			return nil, err
		}
		if !src.Connection.OIDCLoginEnabled() {
			continue
		}
		title := src.Connection.OIDCButtonTitle
		if title == "" {
			title = "Log in with " + src.Name
		}
		out = append(out, OIDCButton{ID: src.ID, Name: src.Name, ButtonTitle: title})
	}
	return out, nil
}

// oidcSource loads an enabled OIDC source; any other source is ErrInvalidCredentials, so a login page cannot tell
// a disabled source from a missing one.
func (d *Directory) oidcSource(ctx context.Context, id string) (*Source, error) {
	st, err := d.Store.Source(ctx, id)
	if errors.Is(err, store.ErrNotExist) {
		return nil, fmt.Errorf("%w: source %s does not exist", ErrInvalidCredentials, id)
	}
	if err != nil {
		return nil, err
	}
	src, err := FromStored(st)
	if err != nil {
		return nil, err
	}
	if src.Connection.Type != TypeOIDC {
		return nil, fmt.Errorf("%w: source %s is not an OIDC source", ErrInvalidCredentials, id)
	}
	if !src.Enabled {
		return nil, fmt.Errorf("%w: source %s is disabled", ErrInvalidCredentials, id)
	}
	if !src.Connection.OIDCLoginEnabled() {
		return nil, fmt.Errorf("%w: source %s has oidc_enabled false", ErrInvalidCredentials, id)
	}
	return src, nil
}

// oidcHTTPClient is the client for talking to the source's provider: TLS verified against tls_trust_anchors
// (or the system roots), a timeout, and no redirects followed off the provider's answers.
func oidcHTTPClient(c *Connection) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLSTrustAnchors != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(c.TLSTrustAnchors)) {
			return nil, errors.New("tls_trust_anchors holds no PEM certificate")
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr, Timeout: oidcTimeout}, nil
}

// oidcClient is one source's provider, discovered, with the OAuth2 configuration to use it.
type oidcClient struct {
	src      *Source
	http     *http.Client
	provider *oidc.Provider
	oauth    oauth2.Config
}

// discover fetches the provider's discovery document (which must name the configured issuer exactly) and builds
// the OAuth2 configuration for redirectURL.
func discover(ctx context.Context, src *Source, redirectURL string) (*oidcClient, error) {
	hc, err := oidcHTTPClient(&src.Connection)
	if err != nil {
		return nil, &SyncError{StatusInternalError, err}
	}
	ctx, cancel := context.WithTimeout(ctx, oidcTimeout)
	defer cancel()
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, hc), src.Connection.OIDCIssuer)
	if err != nil {
		return nil, &SyncError{StatusConnectionFailed, fmt.Errorf("discover %s: %w", src.Connection.OIDCIssuer, err)}
	}
	scopes := []string{oidc.ScopeOpenID, "profile", "email"}
	for _, s := range src.Connection.OIDCAdditionalScopes {
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	return &oidcClient{src: src, http: hc, provider: p, oauth: oauth2.Config{
		ClientID:     src.Connection.OIDCClientID,
		ClientSecret: secret(src.Connection.OIDCClientSecret),
		Endpoint:     p.Endpoint(),
		RedirectURL:  redirectURL,
		Scopes:       scopes,
	}}, nil
}

// syncOIDC checks that the source's provider answers discovery. OIDC users are provisioned at login, so there is
// nothing to list; the status tells an administrator whether logins can work.
func (d *Directory) syncOIDC(ctx context.Context, src *Source) error {
	if _, err := discover(ctx, src, ""); err != nil {
		code := StatusConnectionFailed
		var se *SyncError
		if errors.As(err, &se) {
			code = se.Code
		}
		return d.setStatus(ctx, src.ID, code, err.Error(), err)
	}
	return d.setStatus(ctx, src.ID, StatusOK, "Provider "+src.Connection.OIDCIssuer+" answers discovery; users are provisioned at login", nil)
}

// OIDCAuthCodeURL returns the provider's authorization URL for a login through the source, with p's state, nonce
// and the S256 challenge of p's verifier. A disabled or non-OIDC source is ErrInvalidCredentials; a provider that
// cannot be discovered is ErrUnavailable.
func (d *Directory) OIDCAuthCodeURL(ctx context.Context, sourceID string, p OIDCParams) (string, error) {
	src, err := d.oidcSource(ctx, sourceID)
	if err != nil {
		return "", err
	}
	c, err := discover(ctx, src, p.RedirectURL)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return c.oauth.AuthCodeURL(p.State, oauth2.S256ChallengeOption(p.Verifier), oidc.Nonce(p.Nonce)), nil
}

// OIDCLogin finishes a login through the source: it exchanges code (with the client secret and p's verifier),
// verifies the ID token (signature by the provider's keys, issuer, audience, expiry, p's nonce), reads the user's
// name, groups and tags from its claims, provisions or updates the user, and re-evaluates role rules. Any
// refusal is ErrInvalidCredentials, with the reason in the error text for the log; a provider that cannot be
// reached is ErrUnavailable.
func (d *Directory) OIDCLogin(ctx context.Context, sourceID, code string, p OIDCParams) (*model.User, error) {
	src, err := d.oidcSource(ctx, sourceID)
	if err != nil {
		return nil, err
	}
	c, err := discover(ctx, src, p.RedirectURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, c.http), oidcTimeout)
	defer cancel()
	tok, err := c.oauth.Exchange(ctx, code, oauth2.VerifierOption(p.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			return nil, fmt.Errorf("%w: provider refused the code: %w", ErrInvalidCredentials, err)
		}
		return nil, fmt.Errorf("%w: exchange code: %w", ErrUnavailable, err)
	}
	claims, err := c.verify(ctx, tok, p.Nonce)
	if err != nil {
		return nil, err
	}
	du, err := userFromClaims(&src.Connection, claims)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCredentials, err)
	}
	return d.recordOIDCUser(ctx, src, du)
}

// verify checks the ID token of tok and returns its claims, completed by the userinfo endpoint's for the same
// subject (many providers put groups and profile only there).
func (c *oidcClient) verify(ctx context.Context, tok *oauth2.Token, nonce string) (map[string]any, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, fmt.Errorf("%w: the provider answered without an id_token", ErrInvalidCredentials)
	}
	idt, err := c.provider.VerifierContext(ctx, &oidc.Config{ClientID: c.oauth.ClientID}).Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: id token: %w", ErrInvalidCredentials, err)
	}
	if nonce == "" || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, fmt.Errorf("%w: id token nonce does not match the login's", ErrInvalidCredentials)
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("%w: id token claims: %w", ErrInvalidCredentials, err)
	}
	if c.provider.UserInfoEndpoint() == "" {
		return claims, nil
	}
	ui, err := c.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		// The ID token alone is enough to log in; userinfo only adds claims.
		return claims, nil
	}
	if ui.Subject != idt.Subject {
		return nil, fmt.Errorf("%w: userinfo is about another subject than the id token", ErrInvalidCredentials)
	}
	extra := map[string]any{}
	if err := ui.Claims(&extra); err == nil {
		for k, v := range extra {
			if _, ok := claims[k]; !ok {
				claims[k] = v
			}
		}
	}
	return claims, nil
}

// oidcClaim returns the claim mapped to key by attribute_mapping, or def.
func (c *Connection) oidcClaim(key, def string) string {
	if v, ok := c.AttributeMapping[key]; ok {
		return v
	}
	return def
}

// userFromClaims turns verified claims into a directory user: the login name from preferred_username (or the
// mapped claim, else email, else sub), groups from the groups claim (attribute_mapping member_of), tags from
// oidc_tags_attribute_name (or attribute_mapping tags). The subject is the user's external id.
func userFromClaims(c *Connection, claims map[string]any) (store.DirectoryUser, error) {
	str := func(name string) string {
		s, _ := claims[name].(string)
		return strings.TrimSpace(s)
	}
	du := store.DirectoryUser{ExternalID: str("sub")}
	if du.ExternalID == "" {
		return du, errors.New("id token has no subject")
	}
	for _, name := range []string{c.oidcClaim("username", "preferred_username"), "email", "sub"} {
		if du.Username = str(name); du.Username != "" {
			break
		}
	}
	if !validUsername(du.Username) {
		return du, fmt.Errorf("username %q from the provider is not a valid Gatehouse username", du.Username)
	}
	du.Email = str(c.oidcClaim("email", "email"))
	du.FullName = str(c.oidcClaim("full_name", "name"))
	du.Groups = claimStrings(claims[c.oidcClaim("member_of", "groups")])
	tagsClaim := c.OIDCTagsAttributeName
	if tagsClaim == "" {
		tagsClaim = c.oidcClaim("tags", "")
	}
	if tagsClaim != "" {
		du.Tags = claimStrings(claims[tagsClaim])
	}
	return du, nil
}

// claimStrings reads a claim holding one string, a list of strings or a space- or comma-separated string.
func claimStrings(v any) []string {
	var out []string
	add := func(s string) {
		out = append(out, strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })...)
	}
	switch t := v.(type) {
	case string:
		add(t)
	case []any:
		for _, e := range t {
			if s, ok := e.(string); ok && strings.TrimSpace(s) != "" {
				out = append(out, strings.TrimSpace(s))
			}
		}
	}
	return out
}

// recordOIDCUser provisions or updates the user and its groups and tags (which re-evaluates role rules). A name
// held by another source, or by another subject of this provider, is refused: a provider user who renames
// themselves to an existing name must not become that user.
func (d *Directory) recordOIDCUser(ctx context.Context, src *Source, du store.DirectoryUser) (*model.User, error) {
	existing, err := d.Store.UserByName(ctx, du.Username)
	switch {
	case errors.Is(err, store.ErrNotExist):
	case err != nil:
		return nil, err
	case existing.Source != src.ID:
		return nil, fmt.Errorf("%w: username %s belongs to another source", ErrInvalidCredentials, du.Username)
	default:
		info, err := d.Store.DirectoryInfo(ctx, existing.ID)
		if err != nil && !errors.Is(err, store.ErrNotExist) {
			return nil, err
		}
		if info != nil && info.ExternalID != du.ExternalID {
			return nil, fmt.Errorf("%w: username %s belongs to another subject of the provider", ErrInvalidCredentials, du.Username)
		}
	}
	u, err := d.Store.UpsertDirectoryUser(ctx, src.ID, du)
	if errors.Is(err, store.ErrConflict) {
		return nil, fmt.Errorf("%w: username %s belongs to another source", ErrInvalidCredentials, du.Username)
	}
	if err != nil {
		return nil, err
	}
	d.changed(ctx)
	if !u.Enabled {
		return nil, fmt.Errorf("%w: user %s is disabled", ErrInvalidCredentials, du.Username)
	}
	d.log().Info("oidc login", "source", src.ID, "name", src.Name, "username", u.Username,
		"groups", len(du.Groups), "tags", len(du.Tags))
	return u, nil
}
