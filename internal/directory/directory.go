package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Login outcomes callers tell apart with errors.Is.
var (
	// ErrNotDirectoryUser means no directory handles the name: the caller checks the local password store.
	ErrNotDirectoryUser = errors.New("directory: not a directory user")
	// ErrInvalidCredentials means a directory handled the name and refused it (wrong password, unknown or
	// disabled user, disabled source).
	ErrInvalidCredentials = errors.New("directory: invalid credentials")
	// ErrUnavailable means the directory that should decide could not be asked; the login fails without
	// counting as a wrong password.
	ErrUnavailable = errors.New("directory: source unavailable")
)

// Directory syncs user sources into the store and authenticates directory users. Its zero value is not usable;
// set Store, then call Run (or Sync and Authenticate directly).
type Directory struct {
	// Store is where sources are defined and users are synced to. Required.
	Store *store.Store
	// Log receives sync outcomes; nil discards.
	Log *slog.Logger
	// OnChange, if set, runs after a sync or login that may have changed users or their roles, so the proxy's
	// policy (and the sessions it re-checks) follow at once. The server passes the same hook as the service API's.
	OnChange func(ctx context.Context)
	// CheckInterval is how often Run looks for sources whose ttl has run out; zero means 5 seconds.
	CheckInterval time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	running map[string]bool // a sync of the source is under way
	again   map[string]bool // a refresh arrived while it was
	wg      sync.WaitGroup
	baseCtx context.Context
}

func (d *Directory) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Directory) log() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}

func (d *Directory) changed(ctx context.Context) {
	if d.OnChange != nil {
		d.OnChange(ctx)
	}
}

// Run syncs every source at start-up, then each again when its ttl has run out, until ctx is done. Refreshes
// asked for with Refresh run in the background until then too.
func (d *Directory) Run(ctx context.Context) {
	d.mu.Lock()
	prev := d.baseCtx
	d.baseCtx = ctx
	d.mu.Unlock()
	// Run may end while the process goes on (in a cluster it runs only while this node leads): later Refresh
	// calls must not inherit the ended context.
	defer func() {
		d.mu.Lock()
		d.baseCtx = prev
		d.mu.Unlock()
	}()
	d.syncDue(ctx, true)
	every := d.CheckInterval
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			d.wg.Wait()
			return
		case <-t.C:
			d.syncDue(ctx, false)
		}
	}
}

// syncDue starts a sync of every source whose ttl has run out (or of all of them, at start-up).
func (d *Directory) syncDue(ctx context.Context, all bool) {
	sources, err := d.Store.ListSources(ctx)
	if err != nil {
		d.log().Error("listing sources failed", "err", err)
		return
	}
	now := d.now()
	var due []string
	for _, s := range sources {
		if all || (s.TTL > 0 && !now.Before(s.LastSync.Add(time.Duration(s.TTL)*time.Second))) {
			due = append(due, s.ID)
		}
	}
	d.Refresh(due)
}

// Refresh starts a sync of each source in ids in the background and returns at once. A source already syncing
// is synced once more when it finishes, so no change made before the call is missed.
func (d *Directory) Refresh(ids []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running == nil {
		d.running, d.again = map[string]bool{}, map[string]bool{}
	}
	ctx := d.baseCtx
	if ctx == nil {
		ctx = context.Background()
	}
	for _, id := range ids {
		if d.running[id] {
			d.again[id] = true
			continue
		}
		d.running[id] = true
		d.wg.Add(1)
		go d.syncLoop(ctx, id)
	}
}

func (d *Directory) syncLoop(ctx context.Context, id string) {
	defer d.wg.Done()
	for {
		if err := d.Sync(ctx, id); err != nil && !errors.Is(err, store.ErrNotExist) {
			d.log().Warn("source sync failed", "source", id, "err", err)
		}
		d.mu.Lock()
		if !d.again[id] || ctx.Err() != nil {
			delete(d.running, id)
			delete(d.again, id)
			d.mu.Unlock()
			return
		}
		delete(d.again, id)
		d.mu.Unlock()
	}
}

// Wait blocks until every background sync started so far has finished; for tests and shutdown.
func (d *Directory) Wait() { d.wg.Wait() }

// Sync syncs one source now and records the outcome in its status. It returns the sync's error, which the status
// also tells; an unreachable or refusing directory changes no user.
func (d *Directory) Sync(ctx context.Context, id string) error {
	st, err := d.Store.Source(ctx, id)
	if err != nil {
		return err
	}
	src, err := FromStored(st)
	if err != nil {
		return d.setStatus(ctx, id, StatusInternalError, err.Error(), err)
	}
	switch t := src.Connection.Type; {
	case t == TypeLocal:
		return d.setStatus(ctx, id, StatusOK, "Built-in local user store", nil)
	case !src.Enabled:
		return d.setStatus(ctx, id, StatusDisabled, "Source is disabled; its users cannot log in", nil)
	case t == TypeLDAP || t == TypeAD:
	case t == TypeOIDC:
		return d.syncOIDC(ctx, src)
	default:
		return d.setStatus(ctx, id, StatusNotSupported, fmt.Sprintf("Source type %s is stored, but syncing it is not supported yet", t), nil)
	}
	started := d.now()
	users, err := listUsers(ctx, &src.Connection, secret(src.Connection.LDAPBindPassword))
	if err != nil {
		code := StatusInternalError
		var se *SyncError
		if errors.As(err, &se) {
			code = se.Code
		}
		return d.setStatus(ctx, id, code, err.Error(), err)
	}
	res, err := d.Store.SyncSourceUsers(ctx, id, users)
	if err != nil {
		return d.setStatus(ctx, id, StatusInternalError, "storing synced users failed", err)
	}
	text := fmt.Sprintf("Synced %d users: %d added, %d updated, %d disabled", len(users), res.Added, res.Updated, res.Disabled)
	if len(res.Skipped) > 0 {
		text += fmt.Sprintf("; skipped %d whose username another source holds: %s", len(res.Skipped), strings.Join(res.Skipped, ", "))
	}
	d.log().Info("source synced", "source", id, "name", src.Name, "users", len(users), "added", res.Added,
		"updated", res.Updated, "disabled", res.Disabled, "skipped", len(res.Skipped), "took", d.now().Sub(started))
	err = d.setStatus(ctx, id, StatusOK, text, nil)
	d.changed(ctx)
	return err
}

// failureTexts are what a source's status_text says of a failure. The cause (which may quote the remote
// server: an HTML error page, a discovery document, an LDAP diagnostic) goes to the log only, so nothing a
// provider sends reaches API answers.
var failureTexts = map[string]string{
	StatusConnectionFailed: "The source's server could not be reached or did not answer as expected",
	StatusBindFailed:       "The source's server refused the bind credentials",
	StatusSearchFailed:     "The source's server refused or failed the user search",
	StatusInternalError:    "The source could not be synced because of an internal error",
}

func (d *Directory) setStatus(ctx context.Context, id, code, text string, cause error) error {
	if cause != nil {
		d.log().Warn("source sync failed", "source", id, "status", code, "err", cause)
		generic, ok := failureTexts[code]
		if !ok {
			generic = "The source could not be synced"
		}
		text = generic + "; the server log has the details"
	}
	if err := d.Store.SetSourceStatus(context.WithoutCancel(ctx), id, code, text, d.now()); err != nil && cause == nil {
		return err
	}
	return cause
}

func secret(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Authenticate checks a login name and password against the directory that owns the name and returns the user,
// synced from the directory as of this login. A name already known belongs to the source that provided it; an
// unknown one goes to the enabled directories whose username_pattern matches it, or, when none does, to those
// without patterns. It returns ErrNotDirectoryUser when the name is local or no directory takes it.
func (d *Directory) Authenticate(ctx context.Context, username, password string) (*model.User, error) {
	candidates, err := d.route(ctx, username)
	if err != nil {
		return nil, err
	}
	var unavailable error
	for _, src := range candidates {
		du, err := authenticate(ctx, &src.Connection, secret(src.Connection.LDAPBindPassword), username, password)
		if errors.Is(err, errBadCredentials) {
			continue
		}
		if err != nil {
			d.log().Warn("directory login failed", "source", src.ID, "name", src.Name, "err", err)
			unavailable = err
			continue
		}
		u, err := d.Store.UpsertDirectoryUser(ctx, src.ID, du)
		if errors.Is(err, store.ErrConflict) {
			d.log().Warn("directory user's name is held by another source", "source", src.ID, "username", username)
			continue
		}
		if err != nil {
			return nil, err
		}
		d.changed(ctx)
		if !u.Enabled {
			return nil, ErrInvalidCredentials
		}
		return u, nil
	}
	if unavailable != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, unavailable)
	}
	return nil, ErrInvalidCredentials
}

// route returns the directory sources a login name goes to, or ErrNotDirectoryUser.
func (d *Directory) route(ctx context.Context, username string) ([]*Source, error) {
	u, err := d.Store.UserByName(ctx, username)
	if err != nil && !errors.Is(err, store.ErrNotExist) {
		return nil, err
	}
	if u != nil {
		if u.Source == store.LocalSourceID || u.Source == "" {
			return nil, ErrNotDirectoryUser
		}
		st, err := d.Store.Source(ctx, u.Source)
		if errors.Is(err, store.ErrNotExist) {
			return nil, ErrInvalidCredentials
		}
		if err != nil {
			return nil, err
		}
		src, err := FromStored(st)
		if err != nil {
			return nil, err
		}
		if !src.Enabled || (src.Connection.Type != TypeLDAP && src.Connection.Type != TypeAD) {
			return nil, ErrInvalidCredentials
		}
		return []*Source{src}, nil
	}
	stored, err := d.Store.ListSources(ctx)
	if err != nil {
		return nil, err
	}
	var matched, open []*Source
	for _, st := range stored {
		src, err := FromStored(st)
		if err != nil {
			return nil, err
		}
		if src.MatchesUsername(username) {
			if src.Connection.Type == TypeLocal {
				if len(matched) == 0 {
					return nil, ErrNotDirectoryUser
				}
				continue
			}
			if src.Enabled && (src.Connection.Type == TypeLDAP || src.Connection.Type == TypeAD) {
				matched = append(matched, src)
			}
			continue
		}
		if len(src.UsernamePattern) == 0 && src.Enabled && (src.Connection.Type == TypeLDAP || src.Connection.Type == TypeAD) {
			open = append(open, src)
		}
	}
	if len(matched) > 0 {
		return matched, nil
	}
	if len(open) > 0 {
		return open, nil
	}
	return nil, ErrNotDirectoryUser
}
