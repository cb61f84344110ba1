package store

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/google/uuid"
)

// IndexExtenderToken keeps the keyed hashes of extender enrolment tokens apart from every other secret's.
const IndexExtenderToken = "extender-token"

const extenderColumns = `id, name, routing_prefix, enabled, connected_since, address, version, last_heartbeat, created, author, updated, updated_by,
	authentication, cert_fingerprint, cert_serial, cert_not_after`

func scanExtender(row interface{ Scan(...any) error }) (*model.Extender, error) {
	var e model.Extender
	var since, beat, created, updated, notAfter int64
	var fp, serial string
	if err := row.Scan(&e.ID, &e.Name, &e.RoutingPrefix, &e.Enabled, &since, &e.Status.Address, &e.Status.Version, &beat,
		&created, &e.Author, &updated, &e.UpdatedBy, &e.Authentication, &fp, &serial, &notAfter); err != nil {
		return nil, mapErr(err)
	}
	if fp != "" {
		e.Certificate = &model.ExtenderCertificate{Serial: serial, Fingerprint: fp, NotAfter: fromMicros(notAfter)}
	}
	if since != 0 {
		t := fromMicros(since)
		e.Status.Connected, e.Status.ConnectedSince = true, &t
	}
	if beat != 0 {
		t := fromMicros(beat)
		e.Status.LastHeartbeat = &t
	}
	e.Created, e.Updated = fromMicros(created), fromMicros(updated)
	return &e, nil
}

// CreateExtender stores e with the keyed hash of its enrolment token; the token itself is not kept. A
// "certificate" extender is given a token nobody holds, and e.Certificate if its certificate is issued already (an
// id for it can be set in e.ID beforehand; empty means a new one).
func (s *Store) CreateExtender(ctx context.Context, e *model.Extender, token, actor string) error {
	if e.ID == "" {
		e.ID = uuid.NewString()
	}
	if e.Authentication == "" {
		e.Authentication = model.ExtenderAuthToken
	}
	now := s.now()
	e.Created, e.Updated, e.Author, e.UpdatedBy = now, now, actor, actor
	var fp, serial string
	var notAfter int64
	if c := e.Certificate; c != nil {
		fp, serial, notAfter = c.Fingerprint, c.Serial, micros(c.NotAfter)
	}
	_, err := s.conn().exec(ctx, `INSERT INTO extenders (id, name, routing_prefix, enabled, token_index, created, author, updated, updated_by,
		authentication, cert_fingerprint, cert_serial, cert_not_after)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`, e.ID, e.Name, e.RoutingPrefix, e.Enabled, s.SecretIndex(IndexExtenderToken, token),
		micros(now), actor, micros(now), actor, e.Authentication, fp, serial, notAfter)
	if err != nil {
		return fmt.Errorf("create extender: %w", mapErr(err))
	}
	return nil
}

// Extender returns the extender with id.
func (s *Store) Extender(ctx context.Context, id string) (*model.Extender, error) {
	e, err := scanExtender(s.conn().queryRow(ctx, `SELECT `+extenderColumns+` FROM extenders WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("get extender %s: %w", id, err)
	}
	return e, nil
}

// ExtenderByToken finds the extender whose enrolment token is token, through its keyed hash. An unknown token is
// ErrNotFound.
func (s *Store) ExtenderByToken(ctx context.Context, token string) (*model.Extender, error) {
	e, err := scanExtender(s.conn().queryRow(ctx, `SELECT `+extenderColumns+` FROM extenders WHERE token_index = ?`,
		s.SecretIndex(IndexExtenderToken, token)))
	if err != nil {
		return nil, fmt.Errorf("find extender: %w", err)
	}
	return e, nil
}

// ExtenderByCertificate finds the "certificate" extender whose current certificate has fingerprint fp. A
// reissued (so revoked) or unknown certificate is ErrNotExist.
func (s *Store) ExtenderByCertificate(ctx context.Context, fp string) (*model.Extender, error) {
	e, err := scanExtender(s.conn().queryRow(ctx, `SELECT `+extenderColumns+` FROM extenders WHERE cert_fingerprint = ? AND authentication = ?`,
		fp, model.ExtenderAuthCertificate))
	if err != nil {
		return nil, fmt.Errorf("find extender by certificate: %w", err)
	}
	return e, nil
}

// ReplaceExtenderCertificate records c as the extender's only valid certificate; the previous one stops
// matching at once.
func (s *Store) ReplaceExtenderCertificate(ctx context.Context, id string, c model.ExtenderCertificate, actor string) error {
	res, err := s.conn().exec(ctx, `UPDATE extenders SET cert_fingerprint = ?, cert_serial = ?, cert_not_after = ?, updated = ?, updated_by = ?
		WHERE id = ? AND authentication = ?`, c.Fingerprint, c.Serial, micros(c.NotAfter), micros(s.now()), actor, id, model.ExtenderAuthCertificate)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("replace extender certificate %s: %w", id, err)
	}
	return nil
}

var extenderSortKeys = map[string]string{"name": "name", "routing_prefix": "routing_prefix", "created": "created", "updated": "updated"}

// ListExtenders returns a page of extenders.
func (s *Store) ListExtenders(ctx context.Context, opts ListOptions) ([]*model.Extender, int, error) {
	tail, err := opts.clause(extenderSortKeys, "name")
	if err != nil {
		return nil, 0, err
	}
	where, args := "", []any{}
	if opts.Filter != "" {
		where, args = ` WHERE LOWER(name) LIKE ? ESCAPE '\'`, []any{likePattern(opts.Filter)}
	}
	var total int
	if err := s.conn().queryRow(ctx, `SELECT COUNT(*) FROM extenders`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count extenders: %w", err)
	}
	rows, err := s.conn().query(ctx, `SELECT `+extenderColumns+` FROM extenders`+where+tail, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("list extenders: %w", err)
	}
	defer rows.Close()
	out := []*model.Extender{}
	for rows.Next() {
		e, err := scanExtender(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, e)
	}
	return out, total, rows.Err()
}

// UpdateExtender replaces the name, routing prefix and enabled flag.
func (s *Store) UpdateExtender(ctx context.Context, e *model.Extender, actor string) error {
	now := s.now()
	res, err := s.conn().exec(ctx, `UPDATE extenders SET name = ?, routing_prefix = ?, enabled = ?, updated = ?, updated_by = ? WHERE id = ?`,
		e.Name, e.RoutingPrefix, e.Enabled, micros(now), actor, e.ID)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("update extender %s: %w", e.ID, err)
	}
	e.Updated, e.UpdatedBy = now, actor
	return nil
}

// RotateExtenderToken replaces the extender's enrolment token; the old one stops matching at once.
func (s *Store) RotateExtenderToken(ctx context.Context, id, token, actor string) error {
	res, err := s.conn().exec(ctx, `UPDATE extenders SET token_index = ?, updated = ?, updated_by = ? WHERE id = ?`,
		s.SecretIndex(IndexExtenderToken, token), micros(s.now()), actor, id)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("rotate extender token %s: %w", id, err)
	}
	return nil
}

// DeleteExtender removes the extender.
func (s *Store) DeleteExtender(ctx context.Context, id string) error {
	res, err := s.conn().exec(ctx, `DELETE FROM extenders WHERE id = ?`, id)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("delete extender %s: %w", id, err)
	}
	return nil
}

// SetExtenderStatus records what the gateway sees of the extender's connection; a zero since means disconnected
// and clears the address and version.
func (s *Store) SetExtenderStatus(ctx context.Context, id string, since time.Time, address, version string, heartbeat time.Time) error {
	var sinceMicros, beatMicros int64
	if !since.IsZero() {
		sinceMicros = micros(since)
	} else {
		address, version = "", ""
	}
	if !heartbeat.IsZero() {
		beatMicros = micros(heartbeat)
	}
	_, err := s.conn().exec(ctx, `UPDATE extenders SET connected_since = ?, address = ?, version = ?, last_heartbeat = ? WHERE id = ?`,
		sinceMicros, address, version, beatMicros, id)
	if err != nil {
		return fmt.Errorf("set extender status %s: %w", id, err)
	}
	return nil
}

// ExtenderAdmission is what decides whether a live session of an extender may go on: the extender's current
// state and the keyed hash of its current token.
type ExtenderAdmission struct {
	Enabled         bool
	RoutingPrefix   string
	Authentication  string
	TokenIndex      string
	CertFingerprint string
	CertNotAfter    time.Time
}

// ExtenderAdmission returns the admission state of extender id; a deleted extender is ErrNotExist.
func (s *Store) ExtenderAdmission(ctx context.Context, id string) (ExtenderAdmission, error) {
	var a ExtenderAdmission
	var notAfter int64
	err := s.conn().queryRow(ctx, `SELECT enabled, routing_prefix, authentication, token_index, cert_fingerprint, cert_not_after FROM extenders WHERE id = ?`, id).
		Scan(&a.Enabled, &a.RoutingPrefix, &a.Authentication, &a.TokenIndex, &a.CertFingerprint, &notAfter)
	a.CertNotAfter = fromMicros(notAfter)
	if err != nil {
		return ExtenderAdmission{}, fmt.Errorf("extender admission %s: %w", id, mapErr(err))
	}
	return a, nil
}
