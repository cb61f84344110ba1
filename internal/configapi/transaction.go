package configapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// currentTransaction returns the open transaction (expiring an idle one first), or nil.
func (s *Service) currentTransaction(r *http.Request) (*store.ConfigTransaction, error) {
	tx, err := s.Store.ConfigTransaction(r.Context(), s.now(), s.transactionIdle())
	if errors.Is(err, store.ErrNotExist) {
		return nil, nil
	}
	return tx, err
}

// sessionView is the configuration as the caller sees it: with its staged changes if it holds the transaction.
func (s *Service) sessionView(r *http.Request, c *caller) (*configView, *store.ConfigTransaction, error) {
	committed, err := s.committed(r.Context())
	if err != nil {
		return nil, nil, err
	}
	tx, err := s.currentTransaction(r)
	if err != nil {
		return nil, nil, err
	}
	if tx == nil || tx.HolderIndex != c.Holder {
		return committed, nil, nil
	}
	v, err := s.viewWith(committed, tx.Changes)
	return v, tx, err
}

func lockedBy(tx *store.ConfigTransaction) *Error {
	return &Error{Status: http.StatusConflict, Code: CodeTransactionLocked,
		Message: fmt.Sprintf("the configuration is locked by an open transaction of %s (opened %s); wait for it to commit, roll back or expire",
			tx.HolderName, tx.Opened.Format("2006-01-02T15:04:05Z07:00"))}
}

// writableTransaction returns the caller's transaction, opening one if nobody holds the lock.
func (s *Service) writableTransaction(r *http.Request, c *caller) (*store.ConfigTransaction, error) {
	tx, err := s.currentTransaction(r)
	if err != nil {
		return nil, err
	}
	if tx != nil {
		if tx.HolderIndex != c.Holder {
			return nil, lockedBy(tx)
		}
		return tx, nil
	}
	if err := s.Store.OpenConfigTransaction(r.Context(), s.now(), c.Holder, c.Principal.Name); errors.Is(err, store.ErrLocked) {
		// Another session took the lock between our read and our insert.
		if tx, err := s.currentTransaction(r); err == nil && tx != nil {
			return nil, lockedBy(tx)
		}
		return nil, &Error{Status: http.StatusConflict, Code: CodeTransactionLocked, Message: "the configuration is locked by another session"}
	} else if err != nil {
		return nil, err
	}
	return &store.ConfigTransaction{HolderIndex: c.Holder, HolderName: c.Principal.Name, Opened: s.now(), LastActivity: s.now()}, nil
}

// transaction is /api/transaction: GET status, POST open, PUT {"status":"commit"}, DELETE roll back.
func (s *Service) transaction(w http.ResponseWriter, r *http.Request, c *caller) error {
	switch r.Method {
	case http.MethodGet:
		return s.transactionStatus(w, r, c)
	case http.MethodPost:
		if _, err := s.writableTransaction(r, c); err != nil {
			return err
		}
		return s.transactionStatus(w, r, c)
	case http.MethodDelete:
		tx, err := s.currentTransaction(r)
		if err != nil {
			return err
		}
		if tx == nil || tx.HolderIndex != c.Holder {
			return errNoTransaction
		}
		if err := s.Store.CloseConfigTransaction(r.Context(), c.Holder); err != nil && !errors.Is(err, store.ErrNotExist) {
			return err
		}
		return s.transactionStatus(w, r, c)
	case http.MethodPut:
		var in struct {
			Status string `json:"status"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			return jsonError(err)
		}
		switch in.Status {
		case "commit":
			if err := s.commit(r, c); err != nil {
				return err
			}
		case "rollback":
			if err := s.Store.CloseConfigTransaction(r.Context(), c.Holder); errors.Is(err, store.ErrNotExist) {
				return errNoTransaction
			} else if err != nil {
				return err
			}
		default:
			return syntactic("status", "must be commit or rollback")
		}
		return s.transactionStatus(w, r, c)
	}
	return unsupportedMethod(r.Method)
}

func (s *Service) transactionStatus(w http.ResponseWriter, r *http.Request, c *caller) error {
	tx, err := s.currentTransaction(r)
	if err != nil {
		return err
	}
	body := map[string]any{"status": "closed"}
	switch {
	case tx != nil && tx.HolderIndex == c.Holder:
		remaining := tx.LastActivity.Add(s.transactionIdle()).Sub(s.now())
		body = map[string]any{"status": "open", "remaining_seconds": max(int(remaining.Seconds()), 0), "changes": len(tx.Changes)}
	case tx != nil:
		body["locked_by"] = tx.HolderName
	}
	writeJSON(w, http.StatusOK, map[string]any{"body": body, "meta": meta{Href: transactionPath, Parent: rootPath,
		First: rootPath + "/audit", Last: rootPath + "/user_info", Previous: rootPath + "/endpoints", Next: rootPath + "/user_info", Transaction: transactionPath}})
	return nil
}

// changeView is one staged change as GET /api/transaction/changes shows it.
type changeView struct {
	Type     string          `json:"type"` // create, replace or delete
	Path     string          `json:"path"`
	OldValue json.RawMessage `json:"old_value"`
	NewValue json.RawMessage `json:"new_value"`
}

func (s *Service) describeChanges(committed *configView, changes []store.ConfigChange) []changeView {
	out := make([]changeView, 0, len(changes))
	for _, ch := range changes {
		k := kindByName(ch.Type)
		if k == nil {
			continue
		}
		old := committed.get(k, ch.Key)
		cv := changeView{Path: k.href(ch.Key), OldValue: maskSecrets(old), NewValue: maskSecrets(ch.Body)}
		switch {
		case ch.Body == nil:
			cv.Type = "delete"
		case old == nil:
			cv.Type = "create"
		default:
			cv.Type = "replace"
		}
		if cv.OldValue == nil {
			cv.OldValue = json.RawMessage("null")
		}
		if cv.NewValue == nil {
			cv.NewValue = json.RawMessage("null")
		}
		out = append(out, cv)
	}
	return out
}

// transactionChanges is GET /api/transaction/changes: the caller's staged changes.
func (s *Service) transactionChanges(w http.ResponseWriter, r *http.Request, c *caller) error {
	if r.Method != http.MethodGet {
		return unsupportedMethod(r.Method)
	}
	committed, err := s.committed(r.Context())
	if err != nil {
		return err
	}
	tx, err := s.currentTransaction(r)
	if err != nil {
		return err
	}
	var changes []store.ConfigChange
	if tx != nil && tx.HolderIndex == c.Holder {
		changes = tx.Changes
	}
	writeJSON(w, http.StatusOK, map[string]any{"changes": s.describeChanges(committed, changes),
		"meta": meta{Href: transactionPath + "/changes", Parent: transactionPath, Transaction: transactionPath}})
	return nil
}

// commit validates the whole staged set against the committed configuration and applies it in one database
// transaction, then swaps in the new policy snapshot.
func (s *Service) commit(r *http.Request, c *caller) error {
	tx, err := s.currentTransaction(r)
	if err != nil {
		return err
	}
	if tx == nil || tx.HolderIndex != c.Holder {
		return errNoTransaction
	}
	committed, err := s.committed(r.Context())
	if err != nil {
		return err
	}
	v, _ := s.viewWith(committed, tx.Changes)
	for _, ch := range tx.Changes {
		// Checked again at commit: the caller's roles may have shrunk since it staged the change.
		if err := mayChange(c, ch.Type); err != nil {
			return err
		}
		k := kindByName(ch.Type)
		if k == nil || ch.Body == nil {
			continue
		}
		b, err := decodeBody(k, ch.Body)
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				e.Message = k.href(ch.Key) + ": " + e.Message
			}
			return err
		}
		if err := mayChangeObject(c, k, committed.get(k, ch.Key), b); err != nil {
			return err
		}
	}
	if err := checkReferences(v); err != nil {
		return err
	}
	built, err := s.buildPolicies(r.Context(), v)
	if err != nil {
		return err
	}
	before := s.Policies()
	audit := &model.AuditEvent{Actor: c.Principal.Name, ActorID: c.Principal.ID, Action: "commit", ObjectType: "configuration",
		SourceAddress: clientIP(r), Outcome: "success", Diff: map[string]any{"changes": s.describeChanges(committed, tx.Changes)}}
	err = s.Store.CommitConfig(r.Context(), store.ConfigCommit{HolderIndex: c.Holder, Changes: tx.Changes, Audit: audit, BeforeWrite: s.beforeWrite})
	if errors.Is(err, store.ErrLocked) {
		return errNoTransaction
	}
	if err != nil {
		return err
	}
	s.auditDownloadSwitches(r, c, before, built)
	if err := s.Reload(r.Context()); err != nil {
		s.log().Error("reloading connection policies after commit failed", "err", err)
	}
	if s.OnCommit != nil {
		s.OnCommit()
	}
	return nil
}

// secretFields are body fields whose values are masked in the change list and the audit trail.
var secretFields = []string{"password", "secret", "private_key", "token", "passphrase"}

// maskSecrets replaces the values of secret-looking fields anywhere in a JSON body with "***".
func maskSecrets(b json.RawMessage) json.RawMessage {
	if b == nil {
		return nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return b
	}
	var walk func(any) any
	walk = func(x any) any {
		switch t := x.(type) {
		case map[string]any:
			for k, val := range t {
				secret := false
				for _, f := range secretFields {
					if strings.Contains(strings.ToLower(k), f) {
						secret = true
					}
				}
				if secret && val != nil {
					t[k] = "***"
				} else {
					t[k] = walk(val)
				}
			}
		case []any:
			for i := range t {
				t[i] = walk(t[i])
			}
		}
		return x
	}
	return mustJSON(walk(v))
}
