// Package oidctest runs a real OpenID provider (zitadel's op package) in process for tests: discovery, JWKS,
// authorization with PKCE, token and userinfo endpoints, RS256-signed ID tokens, on an httptest TLS server. Its
// login page approves at once as the user chosen with LoginAs, so a cookie-jar client can follow the whole
// authorization-code flow without a browser. Only tests import it.
package oidctest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// User is a user of the provider.
type User struct {
	Subject  string
	Username string // preferred_username
	Email    string
	Name     string
	Groups   []string // the groups claim, released with the "groups" scope
	Tags     []string // the "gatehouse_tags" claim, always released
}

// Provider is a running OpenID provider with one confidential client.
type Provider struct {
	// Issuer is the provider's https URL, as discovery names it.
	Issuer string
	// CAPEM is the PEM certificate that verifies the provider's TLS.
	CAPEM        string
	ClientID     string
	ClientSecret string
	Server       *httptest.Server

	mu           sync.Mutex
	redirectURIs []string
	users        map[string]*User // by username
	loginAs      string
	spoilNonce   bool
	spoilUIsub   bool // userinfo answers for another subject
	requests     map[string]*authRequest
	codes        map[string]string // code -> request id
	tokens       map[string]*authRequest
	key          *rsa.PrivateKey
	keyID        string
	scopesSeen   [][]string
}

// Start runs a provider until the test ends.
func Start(t testing.TB) *Provider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{
		ClientID: "gatehouse-test", ClientSecret: "provider-client-secret-" + uuid.NewString(),
		users: map[string]*User{}, requests: map[string]*authRequest{}, codes: map[string]string{},
		tokens: map[string]*authRequest{}, key: key, keyID: uuid.NewString(),
	}
	var handler http.Handler
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", p.login)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) })
	p.Server = httptest.NewUnstartedServer(mux)
	p.Server.StartTLS()
	t.Cleanup(p.Server.Close)
	p.Issuer = p.Server.URL
	p.CAPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Server.Certificate().Raw}))
	var cryptoKey [32]byte
	rand.Read(cryptoKey[:])
	prov, err := op.NewProvider(&op.Config{CryptoKey: cryptoKey, CodeMethodS256: true},
		&storage{p}, op.StaticIssuer(p.Issuer), op.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	handler = prov
	return p
}

// AddUser adds or replaces a user.
func (p *Provider) AddUser(u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users[u.Username] = &u
}

// LoginAs chooses the user whom the login page approves.
func (p *Provider) LoginAs(username string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.loginAs = username
}

// AllowRedirect registers a redirect URI of the client.
func (p *Provider) AllowRedirect(uri string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.redirectURIs = append(p.redirectURIs, uri)
}

// SpoilNonce makes the provider put a nonce other than the requested one in its ID tokens.
func (p *Provider) SpoilNonce(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.spoilNonce = on
}

// SpoilUserinfoSubject makes the userinfo endpoint answer with a subject other than the ID token's.
func (p *Provider) SpoilUserinfoSubject(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.spoilUIsub = on
}

// Scopes returns the scopes of each authorization request so far.
func (p *Provider) Scopes() [][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.scopesSeen)
}

// login is the provider's login page: it approves the pending request as the LoginAs user at once.
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	p.mu.Lock()
	req, ok := p.requests[id]
	u := p.users[p.loginAs]
	if ok && u != nil {
		req.subject, req.done, req.authTime = u.Subject, true, time.Now()
	}
	p.mu.Unlock()
	if !ok || u == nil {
		http.Error(w, "no such request or no user to log in as", http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, p.Issuer+"/authorize/callback?id="+url.QueryEscape(id), http.StatusFound)
}

func (p *Provider) userBySubject(sub string) *User {
	for _, u := range p.users {
		if u.Subject == sub {
			return u
		}
	}
	return nil
}

// authRequest is a pending or completed authorization request.
type authRequest struct {
	id       string
	req      oidc.AuthRequest
	nonce    string
	subject  string
	done     bool
	authTime time.Time
}

func (a *authRequest) GetID() string             { return a.id }
func (a *authRequest) GetACR() string            { return "" }
func (a *authRequest) GetAMR() []string          { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string     { return []string{a.req.ClientID} }
func (a *authRequest) GetAuthTime() time.Time    { return a.authTime }
func (a *authRequest) GetClientID() string       { return a.req.ClientID }
func (a *authRequest) GetNonce() string          { return a.nonce }
func (a *authRequest) GetRedirectURI() string    { return a.req.RedirectURI }
func (a *authRequest) GetScopes() []string       { return a.req.Scopes }
func (a *authRequest) GetState() string          { return a.req.State }
func (a *authRequest) GetSubject() string        { return a.subject }
func (a *authRequest) Done() bool                { return a.done }
func (a *authRequest) SetCurrentScopes([]string) {}
func (a *authRequest) GetResponseType() oidc.ResponseType {
	return a.req.ResponseType
}
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return a.req.ResponseMode }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.req.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.req.CodeChallenge, Method: a.req.CodeChallengeMethod}
}

// client is the provider's one confidential client, authenticating with HTTP Basic.
type client struct{ p *Provider }

func (c client) GetID() string                       { return c.p.ClientID }
func (c client) PostLogoutRedirectURIs() []string    { return nil }
func (c client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c client) GrantTypes() []oidc.GrantType         { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c client) LoginURL(id string) string            { return c.p.Issuer + "/login?id=" + url.QueryEscape(id) }
func (c client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c client) IDTokenLifetime() time.Duration       { return 5 * time.Minute }
func (c client) DevMode() bool                        { return false }
func (c client) IsScopeAllowed(string) bool           { return true }
func (c client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c client) ClockSkew() time.Duration             { return 0 }
func (c client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c client) RedirectURIs() []string {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	return slices.Clone(c.p.redirectURIs)
}

type signingKey struct{ p *Provider }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.p.key }
func (k signingKey) ID() string                                  { return k.p.keyID }

type publicKey struct{ p *Provider }

func (k publicKey) ID() string                         { return k.p.keyID }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.p.key.PublicKey }

var errNotFound = errors.New("oidctest: not found")

// storage is the provider's in-memory op.Storage.
type storage struct{ p *Provider }

var _ op.Storage = (*storage)(nil)

func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	a := &authRequest{id: uuid.NewString(), req: *req, nonce: req.Nonce}
	if s.p.spoilNonce {
		a.nonce = "spoiled-" + uuid.NewString()
	}
	s.p.requests[a.id] = a
	s.p.scopesSeen = append(s.p.scopesSeen, slices.Clone([]string(req.Scopes)))
	return a, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if a, ok := s.p.requests[id]; ok {
		return a, nil
	}
	return nil, errNotFound
}

func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if a, ok := s.p.requests[s.p.codes[code]]; ok {
		return a, nil
	}
	return nil, errNotFound
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	s.p.codes[code] = id
	return nil
}

// DeleteAuthRequest runs when a code is redeemed, so a code works once.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	delete(s.p.requests, id)
	for c, rid := range s.p.codes {
		if rid == id {
			delete(s.p.codes, c)
		}
	}
	return nil
}

func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	id := uuid.NewString()
	a, ok := req.(*authRequest)
	if !ok {
		return "", time.Time{}, fmt.Errorf("oidctest: unexpected token request %T", req)
	}
	s.p.tokens[id] = a
	return id, time.Now().Add(5 * time.Minute), nil
}

func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errors.New("oidctest: refresh tokens are not supported")
}

func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

func (s *storage) RevokeToken(context.Context, string, string, string) *oidc.Error { return nil }

func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return signingKey{s.p}, nil }

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) { return []op.Key{publicKey{s.p}}, nil }

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if id != s.p.ClientID {
		return nil, errNotFound
	}
	return client{s.p}, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if id != s.p.ClientID || secret != s.p.ClientSecret {
		return errors.New("oidctest: bad client credentials")
	}
	return nil
}

// userinfo fills the claims the scopes release for the user with subject sub.
func (s *storage) userinfo(info *oidc.UserInfo, sub string, scopes []string) error {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	u := s.p.userBySubject(sub)
	if u == nil {
		return errNotFound
	}
	info.Subject = u.Subject
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeProfile:
			info.PreferredUsername, info.Name = u.Username, u.Name
		case oidc.ScopeEmail:
			info.Email, info.EmailVerified = u.Email, true
		case "groups":
			info.AppendClaims("groups", slices.Clone(u.Groups))
		}
	}
	if len(u.Tags) > 0 {
		info.AppendClaims("gatehouse_tags", slices.Clone(u.Tags))
	}
	return nil
}

func (s *storage) SetUserinfoFromScopes(_ context.Context, info *oidc.UserInfo, sub, _ string, scopes []string) error {
	return s.userinfo(info, sub, scopes)
}

func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, sub, _ string) error {
	s.p.mu.Lock()
	a, ok := s.p.tokens[tokenID]
	s.p.mu.Unlock()
	if !ok || a.subject != sub {
		return errNotFound
	}
	if err := s.userinfo(info, sub, a.req.Scopes); err != nil {
		return err
	}
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if s.p.spoilUIsub {
		info.Subject = "someone-else" // only the userinfo endpoint's answer, not the ID token's claims
	}
	return nil
}

func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errors.New("oidctest: introspection is not supported")
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotFound
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("oidctest: jwt profile is not supported")
}

func (s *storage) Health(context.Context) error { return nil }
