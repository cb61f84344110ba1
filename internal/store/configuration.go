package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/requestid"
)

// IndexConfigSession is the index purpose of configuration API session ids.
const IndexConfigSession = "config-session"

// IndexConsoleSession is the index purpose of web console session ids. The console's sessions share the table of
// the configuration API's, but each scope hashes its ids under its own purpose, so a console cookie value is never
// found as a configuration API session_id, nor the other way round.
const IndexConsoleSession = "console-session"

// configLock names the single row of config_transaction: there is one configuration lock for the whole cluster.
const configLock = "configuration"

// ErrLocked is returned when the configuration transaction is held by another session.
var ErrLocked = errors.New("store: configuration is locked by another session")

// ConfigObject is one committed configuration object.
type ConfigObject struct {
	Type    string
	Key     string
	Body    json.RawMessage
	Created time.Time
	Updated time.Time
}

// ConfigObjects returns every committed configuration object, oldest first.
func (s *Store) ConfigObjects(ctx context.Context) ([]ConfigObject, error) {
	rows, err := s.conn().query(ctx, `SELECT type, obj_key, body, created, updated FROM config_objects ORDER BY created, type, obj_key`)
	if err != nil {
		return nil, fmt.Errorf("list configuration: %w", err)
	}
	defer rows.Close()
	var out []ConfigObject
	for rows.Next() {
		var o ConfigObject
		var body string
		var created, updated int64
		if err := rows.Scan(&o.Type, &o.Key, &body, &created, &updated); err != nil {
			return nil, mapErr(err)
		}
		o.Body, o.Created, o.Updated = json.RawMessage(body), fromMicros(created), fromMicros(updated)
		out = append(out, o)
	}
	return out, mapErr(rows.Err())
}

// ConfigChange is one staged change: a nil Body deletes the object, anything else creates or replaces it.
type ConfigChange struct {
	Type string          `json:"type"`
	Key  string          `json:"key"`
	Body json.RawMessage `json:"body,omitempty"`
}

// ConfigCommit is a whole configuration transaction to apply.
type ConfigCommit struct {
	// HolderIndex is the lock holder's session index; the commit fails with ErrLocked unless it still holds the lock.
	HolderIndex string
	Changes     []ConfigChange
	// Audit is stored in the same database transaction, so a commit and its audit event exist together or not at all.
	Audit *model.AuditEvent
	// BeforeWrite, if set, runs before change i is written; an error aborts the commit. Tests inject failures here.
	BeforeWrite func(i int) error
}

// CommitConfig applies every change, releases the lock and records the audit event in one database transaction:
// all of it, or nothing.
func (s *Store) CommitConfig(ctx context.Context, c ConfigCommit) error {
	now := micros(s.now())
	err := s.inTx(ctx, func(q conn) error {
		var holder string
		if err := q.queryRow(ctx, `SELECT holder_index FROM config_transaction WHERE lock_name = ?`, configLock).Scan(&holder); err != nil {
			if err := mapErr(err); errors.Is(err, ErrNotExist) {
				return ErrLocked
			}
			return mapErr(err)
		}
		if holder != c.HolderIndex {
			return ErrLocked
		}
		for i, ch := range c.Changes {
			if c.BeforeWrite != nil {
				if err := c.BeforeWrite(i); err != nil {
					return err
				}
			}
			if ch.Body == nil {
				if _, err := q.exec(ctx, `DELETE FROM config_objects WHERE type = ? AND obj_key = ?`, ch.Type, ch.Key); err != nil {
					return err
				}
				continue
			}
			// Replacing keeps the creation time, which orders connection policies.
			res, err := q.exec(ctx, `UPDATE config_objects SET body = ?, updated = ? WHERE type = ? AND obj_key = ?`, string(ch.Body), now, ch.Type, ch.Key)
			if err := affectedOne(res, err); err == nil {
				continue
			} else if !errors.Is(err, ErrNotExist) {
				return err
			}
			if _, err := q.exec(ctx, `INSERT INTO config_objects (type, obj_key, body, created, updated) VALUES (?,?,?,?,?)`,
				ch.Type, ch.Key, string(ch.Body), now+int64(i), now); err != nil {
				return err
			}
		}
		if _, err := q.exec(ctx, `DELETE FROM config_transaction WHERE lock_name = ?`, configLock); err != nil {
			return err
		}
		if c.Audit != nil {
			return appendAudit(ctx, q, c.Audit, s.now())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit configuration: %w", err)
	}
	if c.Audit != nil {
		s.notifyAudit(c.Audit)
	}
	return nil
}

// appendAudit inserts e on q (the store or a transaction) and sets e.ID.
func appendAudit(ctx context.Context, q conn, e *model.AuditEvent, now time.Time) error {
	if e.Time.IsZero() {
		e.Time = now
	}
	if e.RequestID == "" {
		e.RequestID = requestid.From(ctx) // every audit writer serving an API request gets it without asking
	}
	diff := ""
	if len(e.Diff) > 0 {
		b, err := json.Marshal(e.Diff)
		if err != nil {
			return fmt.Errorf("append audit: %w", err)
		}
		diff = string(b)
	}
	err := q.queryRow(ctx, `INSERT INTO audit_events (time, actor, actor_id, action, object_type, object_id, source_address, outcome, diff, request_id)
		VALUES (?,?,?,?,?,?,?,?,?,?) RETURNING id`, micros(e.Time), e.Actor, e.ActorID, e.Action, e.ObjectType, e.ObjectID,
		e.SourceAddress, e.Outcome, diff, e.RequestID).Scan(&e.ID)
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}

// ConfigTransaction is the open configuration transaction: the lock and its staged changes.
type ConfigTransaction struct {
	HolderIndex  string
	HolderName   string
	Opened       time.Time
	LastActivity time.Time
	Changes      []ConfigChange
}

// ConfigTransaction returns the open transaction, or ErrNotExist. A transaction idle for longer than idle is
// deleted (rolled back) and reported as not existing. The caller's clock decides, so tests can move it.
func (s *Store) ConfigTransaction(ctx context.Context, now time.Time, idle time.Duration) (*ConfigTransaction, error) {
	if _, err := s.conn().exec(ctx, `DELETE FROM config_transaction WHERE last_activity <= ?`, micros(now.Add(-idle))); err != nil {
		return nil, fmt.Errorf("expire configuration transaction: %w", err)
	}
	var t ConfigTransaction
	var opened, last int64
	var changes string
	err := s.conn().queryRow(ctx, `SELECT holder_index, holder_name, opened, last_activity, changes FROM config_transaction WHERE lock_name = ?`, configLock).
		Scan(&t.HolderIndex, &t.HolderName, &opened, &last, &changes)
	if err != nil {
		return nil, fmt.Errorf("get configuration transaction: %w", mapErr(err))
	}
	t.Opened, t.LastActivity = fromMicros(opened), fromMicros(last)
	if err := json.Unmarshal([]byte(changes), &t.Changes); err != nil {
		return nil, fmt.Errorf("decode configuration transaction: %w", err)
	}
	return &t, nil
}

// OpenConfigTransaction takes the configuration lock for a session. It fails with ErrLocked if another session
// holds it; the caller expires idle transactions first by reading ConfigTransaction.
func (s *Store) OpenConfigTransaction(ctx context.Context, now time.Time, holderIndex, holderName string) error {
	at := micros(now)
	_, err := s.conn().exec(ctx, `INSERT INTO config_transaction (lock_name, holder_index, holder_name, opened, last_activity, changes) VALUES (?,?,?,?,?,?)`,
		configLock, holderIndex, holderName, at, at, "[]")
	if errors.Is(err, ErrConflict) {
		return ErrLocked
	}
	if err != nil {
		return fmt.Errorf("open configuration transaction: %w", err)
	}
	return nil
}

// SaveConfigTransaction replaces the staged changes and marks the transaction active, if holderIndex still holds it.
func (s *Store) SaveConfigTransaction(ctx context.Context, now time.Time, holderIndex string, changes []ConfigChange) error {
	if changes == nil {
		changes = []ConfigChange{}
	}
	b, err := json.Marshal(changes)
	if err != nil {
		return fmt.Errorf("save configuration transaction: %w", err)
	}
	res, err := s.conn().exec(ctx, `UPDATE config_transaction SET changes = ?, last_activity = ? WHERE lock_name = ? AND holder_index = ?`,
		string(b), micros(now), configLock, holderIndex)
	if err := affectedOne(res, err); err != nil {
		if errors.Is(err, ErrNotExist) {
			return ErrLocked
		}
		return fmt.Errorf("save configuration transaction: %w", err)
	}
	return nil
}

// CloseConfigTransaction rolls back (deletes) the transaction held by holderIndex.
func (s *Store) CloseConfigTransaction(ctx context.Context, holderIndex string) error {
	res, err := s.conn().exec(ctx, `DELETE FROM config_transaction WHERE lock_name = ? AND holder_index = ?`, configLock, holderIndex)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("close configuration transaction: %w", err)
	}
	return nil
}

// ConfigSession is a configuration API login session.
type ConfigSession struct {
	PrincipalKind string
	PrincipalID   string
	Name          string
	Method        string // "password" or "x509"; "console" for the web console's
	Created       time.Time
	LastSeen      time.Time
}

// CreateConfigSession stores a new configuration API session under the keyed hash of its id.
func (s *Store) CreateConfigSession(ctx context.Context, now time.Time, id string, cs ConfigSession) error {
	return s.CreateScopedSession(ctx, now, IndexConfigSession, id, cs)
}

// CreateScopedSession stores a new login session of scope (IndexConfigSession or IndexConsoleSession) under the
// keyed hash of its id.
func (s *Store) CreateScopedSession(ctx context.Context, now time.Time, scope, id string, cs ConfigSession) error {
	at := micros(now)
	_, err := s.conn().exec(ctx, `INSERT INTO config_sessions (id_index, principal_kind, principal_id, name, method, created, last_seen) VALUES (?,?,?,?,?,?,?)`,
		s.SecretIndex(scope, id), cs.PrincipalKind, cs.PrincipalID, cs.Name, cs.Method, at, at)
	if err != nil {
		return fmt.Errorf("create configuration session: %w", err)
	}
	return nil
}

// TouchConfigSession returns the session with id if it was seen within idle, and marks it seen now. An idle session
// is deleted and gives ErrNotExist.
func (s *Store) TouchConfigSession(ctx context.Context, now time.Time, id string, idle time.Duration) (*ConfigSession, string, error) {
	return s.TouchScopedSession(ctx, now, IndexConfigSession, id, idle)
}

// TouchScopedSession is TouchConfigSession for a session of scope.
func (s *Store) TouchScopedSession(ctx context.Context, now time.Time, scope, id string, idle time.Duration) (*ConfigSession, string, error) {
	idx := s.SecretIndex(scope, id)
	now = now.UTC().Truncate(time.Microsecond)
	var cs ConfigSession
	var created, last int64
	err := s.conn().queryRow(ctx, `SELECT principal_kind, principal_id, name, method, created, last_seen FROM config_sessions WHERE id_index = ?`, idx).
		Scan(&cs.PrincipalKind, &cs.PrincipalID, &cs.Name, &cs.Method, &created, &last)
	if err != nil {
		return nil, "", fmt.Errorf("get configuration session: %w", mapErr(err))
	}
	cs.Created, cs.LastSeen = fromMicros(created), fromMicros(last)
	if !cs.LastSeen.Add(idle).After(now) {
		s.conn().exec(ctx, `DELETE FROM config_sessions WHERE id_index = ?`, idx)
		return nil, "", fmt.Errorf("get configuration session: expired: %w", ErrNotExist)
	}
	if _, err := s.conn().exec(ctx, `UPDATE config_sessions SET last_seen = ? WHERE id_index = ?`, micros(now), idx); err != nil {
		return nil, "", fmt.Errorf("touch configuration session: %w", err)
	}
	cs.LastSeen = now
	return &cs, idx, nil
}

// DeleteConfigSession logs a session out.
func (s *Store) DeleteConfigSession(ctx context.Context, id string) error {
	return s.DeleteScopedSession(ctx, IndexConfigSession, id)
}

// DeleteScopedSession logs a session of scope out.
func (s *Store) DeleteScopedSession(ctx context.Context, scope, id string) error {
	_, err := s.conn().exec(ctx, `DELETE FROM config_sessions WHERE id_index = ?`, s.SecretIndex(scope, id))
	if err != nil {
		return fmt.Errorf("delete configuration session: %w", err)
	}
	return nil
}

// PurgeConfigSessions deletes sessions idle for longer than idle.
func (s *Store) PurgeConfigSessions(ctx context.Context, now time.Time, idle time.Duration) error {
	_, err := s.conn().exec(ctx, `DELETE FROM config_sessions WHERE last_seen < ?`, micros(now.Add(-idle)))
	return err
}
