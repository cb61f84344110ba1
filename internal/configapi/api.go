// Package configapi serves the configuration API dialect under /api: session-cookie and client-certificate login,
// a navigable configuration tree of {"key","body","meta"} objects, changes staged in a transaction and committed
// atomically, and the compilation of the committed connection policies into the evaluator (internal/connpolicy) that the proxy's
// gate enforces.
package configapi

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/connpolicy"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/serviceapi"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Principals resolves service API bearer tokens and loads principals with their current permissions;
// *serviceapi.API is the implementation.
type Principals interface {
	PrincipalFromToken(r *http.Request) (*serviceapi.Principal, error)
	LoadPrincipal(ctx context.Context, kind, id string) (*serviceapi.Principal, error)
	CheckUserPassword(r *http.Request, username, password, dialect string) (*model.User, error)
	// SecondFactor checks the code of the user's second factor (mfa_type of their source) after the password.
	SecondFactor(r *http.Request, u *model.User, code, dialect string) error
}

var _ Principals = (*serviceapi.API)(nil)

// Service is the configuration API. Store and Principals are required; every other field has a working zero value.
type Service struct {
	Store      *store.Store
	Principals Principals
	// Limiter throttles failed logins; share the service API's so both dialects count the same failures. Nil
	// means a private auth.MemoryLoginLimiter.
	Limiter auth.LoginLimiter
	// Log receives errors; nil discards.
	Log *slog.Logger
	// Terminate ends an API session of the proxy (the sessions manager's Terminate); nil makes
	// DELETE /api/active-sessions answer 404 for every id.
	Terminate func(ctx context.Context, id, reason string) error
	// Approvals serves /api/approvals (session approvals); nil answers 404 there.
	Approvals serviceapi.Approvals
	// OnCommit, if set, runs after every successful commit, once Policies returns the new snapshot.
	OnCommit func()
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// SessionIdleTimeout ends a login session after this long without requests; zero means 20 minutes.
	SessionIdleTimeout time.Duration
	// TransactionIdleTimeout rolls back a transaction after this long without changes; zero means 10 minutes.
	TransactionIdleTimeout time.Duration

	// SharedRates, if set, counts the connections of rate-limited policies for the whole cluster, so that a limit
	// holds across nodes rather than per node; nil counts on this node. Set it before the first use.
	SharedRates connpolicy.SharedCounts

	// beforeWrite is passed to the store's commit; tests inject a failure mid-commit through it.
	beforeWrite func(i int) error

	policies atomic.Pointer[connpolicy.Policies]
	initOnce sync.Once
	rates    *connpolicy.RateCounter
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func (s *Service) sessionIdle() time.Duration {
	if s.SessionIdleTimeout <= 0 {
		return 20 * time.Minute
	}
	return s.SessionIdleTimeout
}

func (s *Service) transactionIdle() time.Duration {
	if s.TransactionIdleTimeout <= 0 {
		return 10 * time.Minute
	}
	return s.TransactionIdleTimeout
}

func (s *Service) init() {
	s.initOnce.Do(func() {
		if s.Limiter == nil {
			s.Limiter = &auth.MemoryLoginLimiter{}
		}
		s.rates = connpolicy.NewRateCounter(s.now)
		s.rates.Shared = s.SharedRates
	})
}

// Paths of the API's fixed resources.
const (
	rootPath        = "/api"
	configPath      = "/api/configuration"
	transactionPath = "/api/transaction"
	authPath        = "/api/authentication"
)

// access is one row of the permission table: who may call method on url and everything below it.
type access struct {
	URL    string
	Method string
	// Perm is the permission required; "" means any authenticated caller, public means no login at all.
	Perm string
}

const public = "(public)"

// permissionTable is the one source of truth for authorization: the guard looks every request up here, and
// /api/user_info renders it. The longest URL prefix that has a row for the method decides.
var permissionTable = []access{
	{authPath, http.MethodGet, public},
	{authPath, http.MethodDelete, public},
	{authPath + "/types", http.MethodGet, public},
	{rootPath, http.MethodGet, ""},
	{"/api/user_info", http.MethodGet, ""},
	{"/api/endpoints", http.MethodGet, ""},
	{configPath, http.MethodGet, auth.ConfigView},
	{configPath, http.MethodPost, auth.ConfigManage},
	{configPath, http.MethodPut, auth.ConfigManage},
	{configPath, http.MethodDelete, auth.ConfigManage},
	{transactionPath, http.MethodGet, auth.ConfigView},
	{transactionPath, http.MethodPost, auth.ConfigManage},
	{transactionPath, http.MethodPut, auth.ConfigManage},
	{transactionPath, http.MethodDelete, auth.ConfigManage},
	{"/api/audit", http.MethodGet, auth.ConnectionsView},
	{"/api/active-sessions", http.MethodDelete, auth.ConnectionsTerminate},
	// Session approvals: any user; the access_control rules decide what each sees and may decide.
	{approvalsPath, http.MethodGet, ""},
	{approvalsPath, http.MethodPost, ""},
}

// lookupAccess finds the row governing method on path; ok is false when no row allows the method at all.
func lookupAccess(method, path string) (access, bool) {
	var best access
	found := false
	for _, a := range permissionTable {
		if a.Method != method || !underPath(path, a.URL) {
			continue
		}
		if !found || len(a.URL) > len(best.URL) {
			best, found = a, true
		}
	}
	return best, found
}

// underPath reports whether path is prefix or below it, segment-wise.
func underPath(path, prefix string) bool {
	path = strings.TrimSuffix(path, "/")
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// allowedMethods lists the methods the table knows for path, for 405 answers.
func allowedMethods(path string) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		if _, ok := lookupAccess(m, path); ok {
			out = append(out, m)
		}
	}
	return out
}

// handlerFunc is a handler that returns its error for the guard to map.
type handlerFunc func(w http.ResponseWriter, r *http.Request, c *caller) error

// Routes registers every route of the configuration API on mux. This is the whole surface, in one place; what
// each route requires is in permissionTable.
func (s *Service) Routes(mux *http.ServeMux) {
	s.init()
	mux.Handle("/api/authentication", s.serve(s.authentication))
	mux.Handle("GET /api/authentication/types", s.serve(s.authenticationTypes))
	mux.Handle("/api/user_info", s.serve(s.userInfo))
	mux.Handle("/api/endpoints", s.serve(s.userInfo))
	mux.Handle("/api/transaction", s.serve(s.transaction))
	mux.Handle("/api/transaction/changes", s.serve(s.transactionChanges))
	mux.Handle("/api/audit/sessions", s.serve(s.auditSessions))
	mux.Handle("/api/active-sessions", s.serve(s.terminateSession))
	mux.Handle(approvalsPath, s.serve(s.approvals))
	mux.Handle(approvalsPath+"/", s.serve(s.approvals))
	// The tree: /api, /api/audit and everything under /api/configuration are served from the node table.
	mux.Handle("/api", s.serve(s.tree))
	mux.Handle("/api/", s.serve(s.tree))
}

// serve wraps h with the permission table: authenticate unless public, then require the row's permission.
func (s *Service) serve(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.guard(w, r, h); err != nil {
			writeError(w, r, s.log(), err)
		}
	})
}

func (s *Service) guard(w http.ResponseWriter, r *http.Request, h handlerFunc) error {
	row, ok := lookupAccess(r.Method, r.URL.Path)
	if !ok {
		if allowed := allowedMethods(r.URL.Path); len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
		}
		return unsupportedMethod(r.Method)
	}
	if row.Perm == public {
		return h(w, r, nil)
	}
	c, err := s.authenticate(w, r)
	if err != nil {
		return err
	}
	if row.Perm != "" && !c.Principal.Permissions.Has(row.Perm) {
		return errUnauthorized
	}
	return h(w, r, c)
}

// permitted lists, for user_info, every URL of the table with the methods p may use on it.
func permitted(p *serviceapi.Principal) []endpointView {
	byURL := map[string][]string{}
	var urls []string
	for _, a := range permissionTable {
		if a.Perm != public && a.Perm != "" && !p.Permissions.Has(a.Perm) {
			continue
		}
		if _, seen := byURL[a.URL]; !seen {
			urls = append(urls, a.URL)
		}
		byURL[a.URL] = append(byURL[a.URL], a.Method)
	}
	slices.Sort(urls)
	out := make([]endpointView, 0, len(urls))
	for _, u := range urls {
		m := byURL[u]
		slices.Sort(m)
		out = append(out, endpointView{URL: u, Methods: slices.Compact(m)})
	}
	return out
}

type endpointView struct {
	Methods []string `json:"methods"`
	URL     string   `json:"url"`
}

// userInfo is GET /api/user_info and /api/endpoints.
func (s *Service) userInfo(w http.ResponseWriter, r *http.Request, c *caller) error {
	writeJSON(w, http.StatusOK, map[string]any{
		"user":      map[string]any{"name": c.Principal.Name, "login_method": c.Method},
		"endpoints": permitted(c.Principal),
		"meta":      map[string]string{"href": r.URL.Path, "parent": rootPath, "transaction": transactionPath},
	})
	return nil
}
