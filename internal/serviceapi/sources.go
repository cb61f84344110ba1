package serviceapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/directory"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Directory is what the service API needs of the user sources: logins of directory users and background
// refreshes. *directory.Directory implements it.
type Directory interface {
	// Authenticate checks a directory user's password; directory.ErrNotDirectoryUser sends the login to the
	// local store, directory.ErrInvalidCredentials refuses it, directory.ErrUnavailable reports an outage.
	Authenticate(ctx context.Context, username, password string) (*model.User, error)
	// Refresh starts a sync of the sources in the background and returns at once.
	Refresh(ids []string)
}

var _ Directory = (*directory.Directory)(nil)

// loadSource returns a source with its secrets, for updates; answers carry it only after Redact.
func (a *API) loadSource(ctx context.Context, id string) (*directory.Source, error) {
	st, err := a.Store.Source(ctx, id)
	if errors.Is(err, store.ErrNotExist) {
		return nil, notFound("source")
	}
	if err != nil {
		return nil, err
	}
	return directory.FromStored(st)
}

func redacted(src *directory.Source) *directory.Source {
	out := *src
	out.Redact()
	return &out
}

func (a *API) listSources(w http.ResponseWriter, r *http.Request) error {
	stored, err := a.Store.ListSources(r.Context())
	if err != nil {
		return err
	}
	counts, err := a.Store.SourceUserCounts(r.Context())
	if err != nil {
		return err
	}
	out := make([]sourceView, 0, len(stored))
	for _, st := range stored {
		src, err := directory.FromStored(st)
		if err != nil {
			return err
		}
		out = append(out, viewSource(withUserCount(src, counts)))
	}
	writeJSON(w, http.StatusOK, newList(out, len(out)))
	return nil
}

func (a *API) getSource(w http.ResponseWriter, r *http.Request) error {
	src, err := a.loadSource(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	counts, err := a.Store.SourceUserCounts(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewSource(withUserCount(src, counts)))
	return nil
}

// withUserCount sets the answer's user_count from counts (by source id).
func withUserCount(src *directory.Source, counts map[string]int) *directory.Source {
	n := counts[src.ID]
	src.UserCount = &n
	return src
}

// createSource is POST /role-store/api/v1/sources. The new source is synced in the background at once; its
// status_code says PENDING until then.
// mustHoldSource applies the delegation rule to writing a source: what the source says of its users (groups,
// tags) decides which roles they get, so the caller must hold those roles' permissions.
func (a *API) mustHoldSource(r *http.Request, id string) error {
	perms, err := a.sourceReach(r.Context(), id)
	if err != nil {
		return err
	}
	return a.mustHold(r, "id", perms)
}

func (a *API) createSource(w http.ResponseWriter, r *http.Request) error {
	src, err := decodeSource(r, nil)
	if err != nil {
		return err
	}
	if strings.EqualFold(src.Connection.Type, directory.TypeLocal) {
		return badRequest("connection.type", "the LOCAL source is built in; there is only one")
	}
	if err := src.Validate(); err != nil {
		return err
	}
	if err := a.mustHoldSource(r, ""); err != nil {
		return err
	}
	src.ID = ""
	st := src.ToStored()
	st.StatusCode, st.StatusText = directory.StatusPending, "Waiting for the first refresh"
	if err := a.Store.CreateSource(r.Context(), st, principal(r.Context()).Name); err != nil {
		return err
	}
	src.ID = st.ID
	a.audit(r, "create", "source", st.ID, nil, redacted(src))
	if a.Directory != nil {
		a.Directory.Refresh([]string{st.ID})
	}
	writeJSON(w, http.StatusCreated, created{ID: st.ID})
	return nil
}

// updateSource is PUT /role-store/api/v1/sources/{id}: it replaces the definition, except that secrets left out
// keep their stored values.
func (a *API) updateSource(w http.ResponseWriter, r *http.Request) error {
	old, err := a.loadSource(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	src, err := decodeSource(r, old)
	if err != nil {
		return err
	}
	isLocal := strings.EqualFold(src.Connection.Type, directory.TypeLocal)
	if (old.Connection.Type == directory.TypeLocal) != isLocal {
		return badRequest("connection.type", "the type of the LOCAL source cannot change, nor can another source become LOCAL")
	}
	if err := a.mustHoldSource(r, old.ID); err != nil {
		return err
	}
	if strings.EqualFold(strings.TrimSpace(src.Connection.Type), old.Connection.Type) {
		src.KeepSecrets(old) // another type's secrets mean nothing to the new one
	}
	if err := src.Validate(); err != nil {
		return err
	}
	src.ID = old.ID
	if err := a.Store.UpdateSource(r.Context(), src.ToStored(), principal(r.Context()).Name); err != nil {
		return err
	}
	a.audit(r, "update", "source", old.ID, redacted(old), redacted(src))
	if a.Directory != nil {
		a.Directory.Refresh([]string{old.ID})
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// deleteSource removes a source with the users it provided; the LOCAL source cannot be deleted.
func (a *API) deleteSource(w http.ResponseWriter, r *http.Request) error {
	src, err := a.loadSource(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if src.Connection.Type == directory.TypeLocal {
		return badRequest("id", "the LOCAL source cannot be deleted")
	}
	if err := a.mustHoldSource(r, src.ID); err != nil {
		return err
	}
	if err := a.Store.DeleteSource(r.Context(), src.ID); err != nil {
		return err
	}
	a.audit(r, "delete", "source", src.ID, redacted(src), nil)
	w.WriteHeader(http.StatusOK)
	return nil
}

// refreshSources is POST /role-store/api/v1/sources/refresh with a JSON array of source ids (the reference's
// content type is application/list; application/json is accepted too). An empty array refreshes every source. It
// starts the syncs and answers at once with the sources as they stand.
func (a *API) refreshSources(w http.ResponseWriter, r *http.Request) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "application/list") {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: "UNSUPPORTED_MEDIA_TYPE", Message: "request body must be a JSON array of source ids"}
	}
	var ids []string
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&ids); err != nil {
		return decodeError(err)
	}
	if a.Directory == nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: "SERVICE_UNAVAILABLE", Message: "source sync is not running on this server"}
	}
	if len(ids) == 0 {
		all, err := a.Store.ListSources(r.Context())
		if err != nil {
			return err
		}
		for _, s := range all {
			ids = append(ids, s.ID)
		}
	}
	out := make([]sourceView, 0, len(ids))
	for i, id := range dedupeStrings(ids) {
		src, err := a.loadSource(r.Context(), id)
		var e *Error
		if errors.As(err, &e) && e.Status == http.StatusNotFound {
			return &Error{Status: http.StatusNotFound, Code: "NOT_FOUND", Message: "source " + id + " not found", Property: fieldIndex("", i)}
		}
		if err != nil {
			return err
		}
		out = append(out, viewSource(src))
	}
	a.Directory.Refresh(dedupeStrings(ids))
	a.audit(r, "refresh", "source", strings.Join(dedupeStrings(ids), ","), nil, nil)
	writeJSON(w, http.StatusOK, newList(out, len(out)))
	return nil
}
