package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// OwnerLimits are the restrictions an administrator left on a user's proxy credential for a target. They outlive
// the credential: a credential the user creates for the target themselves is held to them, so deleting a
// restricted credential and creating another never widens what the user has.
type OwnerLimits struct {
	Enabled       bool
	NotBefore     time.Time
	NotAfter      time.Time
	SourceAddress []string
	SetBy         string
	Updated       time.Time
}

// CredentialOwnerLimits returns the limits recorded for userID's credentials of targetID, or ErrNotExist.
func (s *Store) CredentialOwnerLimits(ctx context.Context, userID, targetID string) (OwnerLimits, error) {
	var l OwnerLimits
	var nb, na, updated int64
	var src string
	err := s.conn().queryRow(ctx, `SELECT enabled, not_before, not_after, source_address, set_by, updated
		FROM credential_owner_limits WHERE user_id = ? AND target_id = ?`, userID, targetID).Scan(&l.Enabled, &nb, &na, &src, &l.SetBy, &updated)
	if err != nil {
		return OwnerLimits{}, fmt.Errorf("owner limits of %s on %s: %w", userID, targetID, mapErr(err))
	}
	if err := json.Unmarshal([]byte(src), &l.SourceAddress); err != nil {
		return OwnerLimits{}, fmt.Errorf("owner limits of %s on %s: source_address: %w", userID, targetID, err)
	}
	l.NotBefore, l.NotAfter, l.Updated = fromMicros(nb), fromMicros(na), fromMicros(updated)
	return l, nil
}

// SetCredentialOwnerLimits records l (SetBy and Updated are filled in) for userID's credentials of targetID,
// replacing what was recorded.
func (s *Store) SetCredentialOwnerLimits(ctx context.Context, userID, targetID string, l OwnerLimits, actor string) error {
	src, _ := json.Marshal(nonNil(l.SourceAddress))
	_, err := s.conn().exec(ctx, `INSERT INTO credential_owner_limits (user_id, target_id, enabled, not_before, not_after, source_address, set_by, updated)
		VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (user_id, target_id) DO UPDATE SET enabled = excluded.enabled, not_before = excluded.not_before,
		not_after = excluded.not_after, source_address = excluded.source_address, set_by = excluded.set_by, updated = excluded.updated`,
		userID, targetID, l.Enabled, micros(l.NotBefore.UTC()), micros(l.NotAfter.UTC()), string(src), actor, micros(s.now()))
	if err != nil {
		return fmt.Errorf("set owner limits of %s on %s: %w", userID, targetID, mapErr(err))
	}
	return nil
}

// DeleteCredentialOwnerLimits lifts the limits recorded for userID's credentials of targetID; none recorded is
// not an error.
func (s *Store) DeleteCredentialOwnerLimits(ctx context.Context, userID, targetID string) error {
	if _, err := s.conn().exec(ctx, `DELETE FROM credential_owner_limits WHERE user_id = ? AND target_id = ?`, userID, targetID); err != nil {
		return fmt.Errorf("lift owner limits of %s on %s: %w", userID, targetID, mapErr(err))
	}
	return nil
}
