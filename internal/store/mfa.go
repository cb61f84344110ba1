package store

import (
	"context"
	"fmt"
	"time"
)

// TOTPEnrolment is a user's TOTP second factor. Secret is in clear in memory only; the row holds it sealed.
type TOTPEnrolment struct {
	UserID    string
	Secret    []byte
	Confirmed bool
	// LastStep is the time step of the last accepted code; codes at or before it are refused.
	LastStep int64
	Created  time.Time
}

func totpAAD(userID string) string { return "user_totp:" + userID + ":secret" }

// SetTOTP replaces the user's enrolment with a new, unconfirmed one holding secret.
func (s *Store) SetTOTP(ctx context.Context, userID string, secret []byte) error {
	sealed, err := s.seal(string(secret), totpAAD(userID))
	if err != nil {
		return fmt.Errorf("set totp: %w", err)
	}
	now := micros(s.now())
	_, err = s.conn().exec(ctx, `INSERT INTO user_totp (user_id, secret_sealed, confirmed, last_step, created) VALUES (?,?,?,?,?)
		ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, confirmed = excluded.confirmed,
		last_step = excluded.last_step, created = excluded.created`, userID, sealed, false, 0, now)
	if err != nil {
		return fmt.Errorf("set totp: %w", mapErr(err))
	}
	return nil
}

// TOTP returns the user's enrolment, or ErrNotExist.
func (s *Store) TOTP(ctx context.Context, userID string) (*TOTPEnrolment, error) {
	var sealed string
	var created int64
	e := &TOTPEnrolment{UserID: userID}
	err := s.conn().queryRow(ctx, `SELECT secret_sealed, confirmed, last_step, created FROM user_totp WHERE user_id = ?`, userID).
		Scan(&sealed, &e.Confirmed, &e.LastStep, &created)
	if err != nil {
		return nil, fmt.Errorf("get totp of %s: %w", userID, mapErr(err))
	}
	plain, err := s.unseal(sealed, totpAAD(userID))
	if err != nil {
		return nil, fmt.Errorf("get totp of %s: %w", userID, err)
	}
	e.Secret, e.Created = []byte(plain), fromMicros(created)
	return e, nil
}

// UseTOTPStep records step as the user's last accepted one and confirms the enrolment, only if step is later than
// the stored one. It reports false when it is not: another login used that code (or a later one) first. The check
// and the write are one statement, so two nodes racing with the same code cannot both win.
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64) (bool, error) {
	res, err := s.conn().exec(ctx, `UPDATE user_totp SET last_step = ?, confirmed = ? WHERE user_id = ? AND last_step < ?`,
		step, true, userID, step)
	if err != nil {
		return false, fmt.Errorf("use totp step: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("use totp step: %w", err)
	}
	return n == 1, nil
}

// DeleteTOTP removes the user's enrolment (a reset); it is not an error if there is none.
func (s *Store) DeleteTOTP(ctx context.Context, userID string) error {
	if _, err := s.conn().exec(ctx, `DELETE FROM user_totp WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("delete totp: %w", err)
	}
	return nil
}
