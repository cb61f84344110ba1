// Package console serves the web console on the API listener: server-rendered pages over the service API, a signed-in
// cookie session, and a small hand-written script for the live views. Every page is a thin view: it calls the
// service API in process with the signed-in user's identity, so each permission check, validation and store rule is
// the API's own, and an error the console shows is the API's message.
package console

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/serviceapi"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Console is the web console. Service, Backend, Store and CSRFKey are required.
type Console struct {
	// Service checks sign-in passwords and loads principals; its token issuer mints the in-process API calls'
	// identities.
	Service *serviceapi.API
	// Backend serves the service API (the API listener's mux); every page reads and writes through it.
	Backend http.Handler
	// Store holds the console's login sessions (beside the configuration API's).
	Store *store.Store
	// CSRFKey keys the per-session anti-forgery tokens.
	CSRFKey []byte
	// Log receives failures; nil discards.
	Log *slog.Logger
	// IdleTimeout ends a session unused for this long; zero means 30 minutes.
	IdleTimeout time.Duration
	// LivePoll is how often the live connection list asks for changes; zero means one second.
	LivePoll time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Done, when closed, ends the live event streams (the server is shutting down); nil means never.
	Done <-chan struct{}

	pages map[string]*template.Template
}

func (c *Console) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Console) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

func (c *Console) idle() time.Duration {
	if c.IdleTimeout <= 0 {
		return 30 * time.Minute
	}
	return c.IdleTimeout
}

// Routes registers every console page on mux. This is the whole surface, in one place.
func (c *Console) Routes(mux *http.ServeMux) error {
	if err := c.parseTemplates(); err != nil {
		return err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return err
	}
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	mux.Handle("GET /static/", c.secured(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(w, r)
	}))
	mux.Handle("GET /{$}", c.page(func(w http.ResponseWriter, r *http.Request, s *session) error {
		http.Redirect(w, r, "/access", http.StatusSeeOther)
		return nil
	}))
	mux.Handle("GET /login", c.secured(c.loginForm))
	mux.Handle("POST /login", c.secured(c.login))
	mux.Handle("POST /logout", c.page(c.logout))
	mux.Handle("GET /login/oidc/{source}", c.secured(c.oidcStart))
	mux.Handle("GET "+OIDCCallbackPath, c.secured(c.oidcCallback))

	mux.Handle("GET /access", c.page(c.myAccess))
	mux.Handle("GET /access/targets/{id}", c.page(c.targetAccess))
	mux.Handle("GET /access/ca.pem", c.page(c.caDownload))
	mux.Handle("POST /access/credentials", c.page(c.createCredential))
	mux.Handle("GET /access/credentials/{id}", c.page(c.credentialPage))
	mux.Handle("POST /access/credentials/{id}", c.page(c.updateCredential))
	mux.Handle("POST /access/credentials/{id}/revoke", c.page(c.revokeCredential))
	mux.Handle("POST /access/credentials/{id}/rotate", c.page(c.rotateCredential))
	mux.Handle("GET /access/credentials/{id}/kubeconfig", c.page(c.kubeconfig))

	mux.Handle("GET /monitor/connections", c.page(c.connections))
	mux.Handle("GET /monitor/connections/events", c.page(c.connectionEvents))
	mux.Handle("GET /monitor/connections/{id}", c.page(c.connection))
	mux.Handle("GET /monitor/connections/{id}/stream", c.page(c.connectionStream))
	mux.Handle("GET /monitor/connections/{id}/trail.json", c.page(c.connectionTrailJSON))
	mux.Handle("GET /monitor/connections/{id}/har", c.page(c.connectionHAR))
	mux.Handle("GET /monitor/connections/{id}/terminate", c.page(c.confirmTerminate))
	mux.Handle("POST /monitor/connections/{id}/terminate", c.page(c.terminate))
	mux.Handle("GET /monitor/users/{id}/terminate", c.page(c.confirmTerminateUser))
	mux.Handle("POST /monitor/users/{id}/terminate", c.page(c.terminateUser))
	mux.Handle("GET /monitor/audit", c.page(c.audit))
	mux.Handle("GET /approvals", c.page(c.approvals))
	mux.Handle("POST /approvals/{id}", c.page(c.decideApproval))

	mux.Handle("GET /admin/targets", c.page(c.targets))
	mux.Handle("GET /admin/targets/new", c.page(c.newTarget))
	mux.Handle("POST /admin/targets", c.page(c.createTarget))
	mux.Handle("GET /admin/targets/{id}", c.page(c.editTarget))
	mux.Handle("POST /admin/targets/{id}", c.page(c.updateTarget))
	mux.Handle("GET /admin/users", c.page(c.users))
	mux.Handle("POST /admin/users", c.page(c.createUser))
	mux.Handle("GET /admin/users/{id}", c.page(c.editUser))
	mux.Handle("POST /admin/users/{id}", c.page(c.updateUser))
	mux.Handle("GET /admin/users/{id}/delete", c.page(c.confirmDeleteUser))
	mux.Handle("POST /admin/users/{id}/delete", c.page(c.deleteUser))
	mux.Handle("GET /admin/roles", c.page(c.roles))
	mux.Handle("POST /admin/roles", c.page(c.createRole))
	mux.Handle("GET /admin/roles/{id}", c.page(c.editRole))
	mux.Handle("POST /admin/roles/{id}", c.page(c.updateRole))
	mux.Handle("POST /admin/roles/{id}/members", c.page(c.changeMember))
	mux.Handle("GET /admin/roles/{id}/delete", c.page(c.confirmDeleteRole))
	mux.Handle("POST /admin/roles/{id}/delete", c.page(c.deleteRole))
	mux.Handle("GET /admin/clients", c.page(c.clients))
	mux.Handle("GET /admin/sources", c.page(c.sources))
	mux.Handle("GET /admin/sources/{id}", c.page(c.sourcePage))
	mux.Handle("POST /admin/sources/{id}", c.page(c.updateSource))
	mux.Handle("POST /admin/sources/{id}/refresh", c.page(c.refreshSource))
	mux.Handle("GET /admin/hosts", c.page(c.hosts))
	mux.Handle("GET /admin/hosts/new", c.page(c.newHost))
	mux.Handle("POST /admin/hosts", c.page(c.saveHost))
	mux.Handle("GET /admin/hosts/{id}", c.page(c.editHost))
	mux.Handle("POST /admin/hosts/{id}", c.page(c.saveHost))
	mux.Handle("GET /admin/hosts/{id}/delete", c.page(c.confirmDeleteHost))
	mux.Handle("POST /admin/hosts/{id}/delete", c.page(c.deleteHost))
	mux.Handle("GET /settings/api-proxy", c.page(c.settings))
	mux.Handle("POST /settings/api-proxy", c.page(c.saveSettings))
	mux.Handle("GET /admin/policies", c.page(c.policies))
	mux.Handle("POST /admin/policies/transaction", c.page(c.transactionAction))
	mux.Handle("GET /admin/policies/changes", c.page(c.policyChanges))
	mux.Handle("GET /admin/policies/edit", c.page(c.policyForm))
	mux.Handle("POST /admin/policies/edit", c.page(c.savePolicy))
	return nil
}

// contentSecurityPolicy allows nothing but the console's own files: no inline script or style, no framing, forms
// posting only here, and Trusted Types so no script can turn a string into markup.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

// secured sets the headers every console answer carries.
func (c *Console) secured(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		// same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on form posts, and the
		// forgery check needs the real origin.
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		hd.Set("Strict-Transport-Security", "max-age=31536000")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			hd.Set("Cache-Control", "no-store")
		}
		h(w, r)
	})
}

// httpError is a console failure with the status and the message the page shows.
type httpError struct {
	Status  int
	Message string
	Err     error
}

func (e *httpError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

func (e *httpError) Unwrap() error { return e.Err }

// fail renders err as an error page: the one place console errors become responses.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	var ae *apiError
	var he *httpError
	status, msg := http.StatusInternalServerError, "something went wrong; the server log has the details"
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
		// The session's principal lost its access between the session check and the API call.
		c.endSession(w, r)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	case errors.As(err, &ae) && ae.Status < 500:
		status, msg = max(ae.Status, http.StatusBadRequest), ae.Message
		if ae.Status == http.StatusForbidden {
			msg = "You do not have the permission this page needs (" + ae.Message + ")."
		}
	case errors.As(err, &he):
		status, msg = he.Status, he.Message
		if status >= 500 {
			c.log().Error("console request failed", "path", r.URL.Path, "err", err)
		}
	default:
		c.log().Error("console request failed", "path", r.URL.Path, "err", err)
	}
	v := &view{Title: http.StatusText(status), Error: msg}
	c.render(w, r, s, status, "error", v)
}
