package store

import (
	"context"
	"fmt"
	"time"
)

// RefreshToken is a stored refresh token; only its keyed hash is kept.
type RefreshToken struct {
	PrincipalKind string // "user" or "api-client"
	PrincipalID   string
	Expires       time.Time
	// Created is when the token was issued (set by ConsumeRefreshToken), to compare with the user's token cutoff.
	Created time.Time
}

// SaveRefreshToken stores a refresh token under the keyed hash of its value.
func (s *Store) SaveRefreshToken(ctx context.Context, token string, rt RefreshToken) error {
	_, err := s.conn().exec(ctx, `INSERT INTO refresh_tokens (token_index, principal_kind, principal_id, expires, created) VALUES (?,?,?,?,?)`,
		s.SecretIndex(IndexRefreshToken, token), rt.PrincipalKind, rt.PrincipalID, micros(rt.Expires), micros(s.now()))
	if err != nil {
		return fmt.Errorf("save refresh token: %w", err)
	}
	return nil
}

// ConsumeRefreshToken deletes a refresh token and returns what it was for, so each one is used once (rotation).
// Expired tokens give ErrNotExist.
func (s *Store) ConsumeRefreshToken(ctx context.Context, token string) (RefreshToken, error) {
	var rt RefreshToken
	idx := s.SecretIndex(IndexRefreshToken, token)
	err := s.inTx(ctx, func(q conn) error {
		var exp, created int64
		if err := q.queryRow(ctx, `SELECT principal_kind, principal_id, expires, created FROM refresh_tokens WHERE token_index = ?`, idx).
			Scan(&rt.PrincipalKind, &rt.PrincipalID, &exp, &created); err != nil {
			return mapErr(err)
		}
		rt.Expires, rt.Created = fromMicros(exp), fromMicros(created)
		res, err := q.exec(ctx, `DELETE FROM refresh_tokens WHERE token_index = ?`, idx)
		return affectedOne(res, err)
	})
	if err != nil {
		return RefreshToken{}, fmt.Errorf("consume refresh token: %w", err)
	}
	if !rt.Expires.After(s.now()) {
		return RefreshToken{}, fmt.Errorf("consume refresh token: expired: %w", ErrNotExist)
	}
	return rt, nil
}

// PurgeRefreshTokens deletes expired refresh tokens.
func (s *Store) PurgeRefreshTokens(ctx context.Context) error {
	_, err := s.conn().exec(ctx, `DELETE FROM refresh_tokens WHERE expires < ?`, micros(s.now()))
	return err
}

// DeletePrincipalRefreshTokens revokes every refresh token of a principal (on delete or disable).
func (s *Store) DeletePrincipalRefreshTokens(ctx context.Context, kind, id string) error {
	_, err := s.conn().exec(ctx, `DELETE FROM refresh_tokens WHERE principal_kind = ? AND principal_id = ?`, kind, id)
	return err
}
