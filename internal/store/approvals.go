package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/google/uuid"
)

const approvalColumns = `id, session_id, policy_key, policy_name, requester_id, requester, client_address, target_id, target,
	request_line, node, state, rules, decider_id, decider, decider_address, comment, created, expires, decided`

func scanApproval(row interface{ Scan(...any) error }) (approval.Request, error) {
	var r approval.Request
	var state, rules string
	var created, expires, decided int64
	if err := row.Scan(&r.ID, &r.SessionID, &r.PolicyKey, &r.PolicyName, &r.RequesterID, &r.Requester, &r.ClientAddress,
		&r.TargetID, &r.Target, &r.RequestLine, &r.Node, &state, &rules, &r.DeciderID, &r.Decider, &r.DeciderAddress,
		&r.Comment, &created, &expires, &decided); err != nil {
		return r, mapErr(err)
	}
	r.State = approval.State(state)
	if err := json.Unmarshal([]byte(rules), &r.Rules); err != nil {
		return r, fmt.Errorf("approval request %s: rules: %w", r.ID, err)
	}
	r.Created, r.Expires = fromMicros(created), fromMicros(expires)
	if decided != 0 {
		r.Decided = fromMicros(decided)
	}
	return r, nil
}

// CreateApproval stores a new pending approval request; an empty ID is filled in. A second request for the same
// session is ErrConflict.
func (s *Store) CreateApproval(ctx context.Context, r *approval.Request) error {
	if r.ID == "" {
		r.ID = uuid.NewString()
	}
	if r.Rules == nil {
		r.Rules = []approval.Rule{}
	}
	rules, err := json.Marshal(r.Rules)
	if err != nil {
		return fmt.Errorf("create approval request: %w", err)
	}
	_, err = s.conn().exec(ctx, `INSERT INTO approval_requests (`+approvalColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		r.ID, r.SessionID, r.PolicyKey, r.PolicyName, r.RequesterID, r.Requester, r.ClientAddress, r.TargetID, r.Target,
		r.RequestLine, r.Node, string(r.State), string(rules), r.DeciderID, r.Decider, r.DeciderAddress, r.Comment,
		micros(r.Created), micros(r.Expires), decidedMicros(r.Decided))
	if err != nil {
		return fmt.Errorf("create approval request: %w", mapErr(err))
	}
	return nil
}

func decidedMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return micros(t)
}

// Approval returns the approval request with id.
func (s *Store) Approval(ctx context.Context, id string) (approval.Request, error) {
	r, err := scanApproval(s.conn().queryRow(ctx, `SELECT `+approvalColumns+` FROM approval_requests WHERE id = ?`, id))
	if err != nil {
		return r, fmt.Errorf("get approval request %s: %w", id, err)
	}
	return r, nil
}

// ApprovalOfSession returns the approval request of an API session.
func (s *Store) ApprovalOfSession(ctx context.Context, sessionID string) (approval.Request, error) {
	r, err := scanApproval(s.conn().queryRow(ctx, `SELECT `+approvalColumns+` FROM approval_requests WHERE session_id = ?`, sessionID))
	if err != nil {
		return r, fmt.Errorf("get approval request of session %s: %w", sessionID, err)
	}
	return r, nil
}

// ListApprovals returns approval requests, newest first; a non-empty state keeps only those in it. limit 0 means
// DefaultLimit.
func (s *Store) ListApprovals(ctx context.Context, state approval.State, offset, limit int) ([]approval.Request, int, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	where, args := "", []any{}
	if state != "" {
		where, args = ` WHERE state = ?`, []any{string(state)}
	}
	var total int
	if err := s.conn().queryRow(ctx, `SELECT COUNT(*) FROM approval_requests`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count approval requests: %w", mapErr(err))
	}
	rows, err := s.conn().query(ctx, `SELECT `+approvalColumns+` FROM approval_requests`+where+
		fmt.Sprintf(` ORDER BY created DESC, id LIMIT %d OFFSET %d`, limit, max(offset, 0)), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("list approval requests: %w", mapErr(err))
	}
	defer rows.Close()
	var out []approval.Request
	for rows.Next() {
		r, err := scanApproval(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("list approval requests: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list approval requests: %w", err)
	}
	return out, total, nil
}

// ErrApprovalDecided is returned by DecideApproval when the request left pending meanwhile (another decision, on
// this node or another, or its expiry came first).
var ErrApprovalDecided = errors.New("store: approval request is no longer pending")

// DecideApproval stores the outcome of a pending request (r as approval.Decide or approval.Expire returned it).
// Only a request still pending in the database changes, so of two concurrent decisions exactly one wins; the
// loser gets ErrApprovalDecided.
func (s *Store) DecideApproval(ctx context.Context, r approval.Request) error {
	if !r.State.Final() {
		return fmt.Errorf("decide approval request %s: state %q is not a decision", r.ID, r.State)
	}
	res, err := s.conn().exec(ctx, `UPDATE approval_requests SET state = ?, decider_id = ?, decider = ?, decider_address = ?,
		comment = ?, decided = ? WHERE id = ? AND state = ?`, string(r.State), r.DeciderID, r.Decider, r.DeciderAddress,
		r.Comment, decidedMicros(r.Decided), r.ID, string(approval.StatePending))
	if err != nil {
		return fmt.Errorf("decide approval request %s: %w", r.ID, mapErr(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("decide approval request %s: %w", r.ID, err)
	} else if n == 0 {
		if _, err := s.Approval(ctx, r.ID); err != nil {
			return fmt.Errorf("decide approval request: %w", err)
		}
		return fmt.Errorf("decide approval request %s: %w", r.ID, ErrApprovalDecided)
	}
	return nil
}

// NotificationSettings returns the stored notification settings body (JSON without secrets) and the SMTP password
// in clear; ErrNotExist when none were saved.
func (s *Store) NotificationSettings(ctx context.Context) (body, smtpPassword string, err error) {
	var sealed string
	if err := s.conn().queryRow(ctx, `SELECT body, smtp_password FROM notification_settings WHERE id = 1`).Scan(&body, &sealed); err != nil {
		return "", "", fmt.Errorf("get notification settings: %w", mapErr(err))
	}
	if smtpPassword, err = s.unseal(sealed, "notification_settings.smtp_password"); err != nil {
		return "", "", fmt.Errorf("get notification settings: %w", err)
	}
	return body, smtpPassword, nil
}

// WebhookSecrets returns the stored webhook signing secrets in clear, one per webhook of the stored body in its
// order ("" for none); nil when none were saved.
func (s *Store) WebhookSecrets(ctx context.Context) ([]string, error) {
	var sealed string
	err := s.conn().queryRow(ctx, `SELECT webhook_secrets FROM notification_settings WHERE id = 1`).Scan(&sealed)
	if errors.Is(mapErr(err), ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get webhook secrets: %w", mapErr(err))
	}
	plain, err := s.unseal(sealed, "notification_settings.webhook_secrets")
	if err != nil || plain == "" {
		return nil, err
	}
	var out []string
	if err := json.Unmarshal([]byte(plain), &out); err != nil {
		return nil, fmt.Errorf("get webhook secrets: %w", err)
	}
	return out, nil
}

// SaveNotificationSettings replaces the notification settings; the SMTP password is sealed, and a nil password
// keeps the stored one. The stored webhook secrets stay as they are.
func (s *Store) SaveNotificationSettings(ctx context.Context, body string, smtpPassword *string, actor string) error {
	return s.SaveNotificationSettingsSecrets(ctx, body, smtpPassword, nil, actor)
}

// SaveNotificationSettingsSecrets is SaveNotificationSettings that also replaces the webhook signing secrets (one
// per webhook of body, in order), sealed, unless webhookSecrets is nil.
func (s *Store) SaveNotificationSettingsSecrets(ctx context.Context, body string, smtpPassword *string, webhookSecrets []string, actor string) error {
	var sealedHooks *string
	if webhookSecrets != nil {
		b, err := json.Marshal(webhookSecrets)
		if err != nil {
			return err
		}
		v, err := s.seal(string(b), "notification_settings.webhook_secrets")
		if err != nil {
			return fmt.Errorf("save notification settings: %w", err)
		}
		sealedHooks = &v
	}
	return s.inTx(ctx, func(c conn) error {
		var sealed string
		err := c.queryRow(ctx, `SELECT smtp_password FROM notification_settings WHERE id = 1`).Scan(&sealed)
		if err != nil && !errors.Is(mapErr(err), ErrNotExist) {
			return fmt.Errorf("save notification settings: %w", mapErr(err))
		}
		exists := err == nil
		if smtpPassword != nil {
			sealed = ""
			if *smtpPassword != "" {
				if sealed, err = s.seal(*smtpPassword, "notification_settings.smtp_password"); err != nil {
					return fmt.Errorf("save notification settings: %w", err)
				}
			}
		}
		q := `INSERT INTO notification_settings (body, smtp_password, updated, updated_by, id) VALUES (?,?,?,?,1)`
		if exists {
			q = `UPDATE notification_settings SET body = ?, smtp_password = ?, updated = ?, updated_by = ? WHERE id = 1`
		}
		if _, err := c.exec(ctx, q, body, sealed, micros(s.now()), actor); err != nil {
			return fmt.Errorf("save notification settings: %w", mapErr(err))
		}
		if sealedHooks != nil {
			if _, err := c.exec(ctx, `UPDATE notification_settings SET webhook_secrets = ? WHERE id = 1`, *sealedHooks); err != nil {
				return fmt.Errorf("save notification settings: %w", mapErr(err))
			}
		}
		return nil
	})
}
