package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/google/uuid"
)

// RoleRule is a membership rule of a role: a user holds the role while the rule matches what its directory said at
// the last sync or login. GroupDN and Tag are alternatives; SourceID is required with GroupDN and optional with Tag
// (empty: a tag from any source).
type RoleRule struct {
	ID       int64
	RoleID   string
	SourceID string
	GroupDN  string
	Tag      string
}

// matches reports whether the rule grants its role to a directory user of sourceID with groups and tags, which
// are normalized as NormalizeDN and NormalizeTag leave them.
func (r RoleRule) matches(sourceID string, groups, tags []string) bool {
	if r.SourceID != "" && r.SourceID != sourceID {
		return false
	}
	switch {
	case r.GroupDN != "":
		return slices.Contains(groups, r.GroupDN)
	case r.Tag != "":
		return slices.Contains(tags, r.Tag)
	}
	return false
}

// NormalizeDN puts a distinguished name in the form rules and memberships are compared in: lower case, no spaces
// around the separators. Escaped commas stay part of their value.
func NormalizeDN(dn string) string {
	var parts []string
	start := 0
	for i := 0; i < len(dn); i++ {
		switch dn[i] {
		case '\\':
			i++
		case ',':
			parts = append(parts, dn[start:i])
			start = i + 1
		}
	}
	parts = append(parts, dn[start:])
	for i, p := range parts {
		attr, val, ok := strings.Cut(p, "=")
		if ok {
			p = strings.TrimSpace(attr) + "=" + strings.TrimSpace(val)
		}
		parts[i] = strings.ToLower(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

// NormalizeTag is the form tags are compared in.
func NormalizeTag(tag string) string { return strings.ToLower(strings.TrimSpace(tag)) }

// SetRoleRules replaces the role's membership rules and re-evaluates every rule grant, atomically.
func (s *Store) SetRoleRules(ctx context.Context, roleID string, rules []RoleRule) error {
	return s.inTx(ctx, func(c conn) error {
		if _, err := c.exec(ctx, `DELETE FROM role_rules WHERE role_id = ?`, roleID); err != nil {
			return fmt.Errorf("set rules of role %s: %w", roleID, err)
		}
		for _, r := range rules {
			if r.SourceID != "" {
				var one int
				if err := c.queryRow(ctx, `SELECT 1 FROM sources WHERE id = ?`, r.SourceID).Scan(&one); err != nil {
					return fmt.Errorf("set rules of role %s: source %s: %w", roleID, r.SourceID, ErrReference)
				}
			}
			if _, err := c.exec(ctx, `INSERT INTO role_rules (role_id, source_id, group_dn, tag) VALUES (?,?,?,?)`,
				roleID, r.SourceID, NormalizeDN(r.GroupDN), NormalizeTag(r.Tag)); err != nil {
				return fmt.Errorf("set rules of role %s: %w", roleID, err)
			}
		}
		return s.recomputeRuleGrants(ctx, c)
	})
}

// RoleRules returns the rules of one role, or of every role when roleID is empty, in creation order.
func (s *Store) RoleRules(ctx context.Context, roleID string) ([]RoleRule, error) {
	return roleRules(ctx, s.conn(), roleID)
}

func roleRules(ctx context.Context, c conn, roleID string) ([]RoleRule, error) {
	q, args := `SELECT id, role_id, source_id, group_dn, tag FROM role_rules ORDER BY id`, []any{}
	if roleID != "" {
		q, args = `SELECT id, role_id, source_id, group_dn, tag FROM role_rules WHERE role_id = ? ORDER BY id`, []any{roleID}
	}
	rows, err := c.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("role rules: %w", err)
	}
	defer rows.Close()
	out := []RoleRule{}
	for rows.Next() {
		var r RoleRule
		if err := rows.Scan(&r.ID, &r.RoleID, &r.SourceID, &r.GroupDN, &r.Tag); err != nil {
			return nil, mapErr(err)
		}
		out = append(out, r)
	}
	return out, mapErr(rows.Err())
}

// recomputeRuleGrants is rebuildRuleGrants ending the sessions of users it takes a role from.
func (s *Store) recomputeRuleGrants(ctx context.Context, c conn) error {
	return s.endSessionsOnRoleLoss(ctx, c, func() error { return rebuildRuleGrants(ctx, c) })
}

// rebuildRuleGrants rebuilds user_rule_roles from every rule and every directory user still present upstream.
// It runs inside the transaction that changed either side, so grants never lag their inputs.
func rebuildRuleGrants(ctx context.Context, c conn) error {
	rules, err := roleRules(ctx, c, "")
	if err != nil {
		return err
	}
	type grant struct{ user, role, rule string }
	var grants []grant
	if len(rules) > 0 {
		rows, err := c.query(ctx, `SELECT user_id, source_id, member_of, tags FROM directory_users WHERE present = ?`, true)
		if err != nil {
			return fmt.Errorf("recompute rule grants: %w", err)
		}
		for rows.Next() {
			var uid, sid, groupsJSON, tagsJSON string
			if err := rows.Scan(&uid, &sid, &groupsJSON, &tagsJSON); err != nil {
				rows.Close()
				return mapErr(err)
			}
			var groups, tags []string
			json.Unmarshal([]byte(groupsJSON), &groups)
			json.Unmarshal([]byte(tagsJSON), &tags)
			for _, r := range rules {
				if r.matches(sid, groups, tags) {
					grants = append(grants, grant{uid, r.RoleID, strconv.FormatInt(r.ID, 10)})
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return mapErr(err)
		}
	}
	if _, err := c.exec(ctx, `DELETE FROM user_rule_roles`); err != nil {
		return fmt.Errorf("recompute rule grants: %w", err)
	}
	for _, g := range grants {
		if _, err := c.exec(ctx, `INSERT INTO user_rule_roles (user_id, role_id, rule) VALUES (?,?,?)`, g.user, g.role, g.rule); err != nil {
			return fmt.Errorf("recompute rule grants: %w", err)
		}
	}
	return nil
}

// DirectoryUser is one user as a directory describes it.
type DirectoryUser struct {
	ExternalID string // the entry's DN
	Username   string
	Email      string
	FullName   string
	Groups     []string // group DNs
	Tags       []string
}

// SyncResult counts what a sync changed.
type SyncResult struct {
	Added, Updated, Disabled int
	// Skipped names the users left out because another source (or the local store) already has their username.
	Skipped []string
}

// SyncSourceUsers makes the source's users match a directory's full listing, atomically: listed users are
// created or updated, users no longer listed are disabled (never deleted: their history and credentials stay, but
// they lose access), and rule grants are re-evaluated.
func (s *Store) SyncSourceUsers(ctx context.Context, sourceID string, listed []DirectoryUser) (SyncResult, error) {
	var res SyncResult
	err := s.inTx(ctx, func(c conn) error {
		res = SyncResult{}
		type known struct {
			id      string
			present bool
		}
		existing := map[string]known{}
		rows, err := c.query(ctx, `SELECT u.id, u.username, COALESCE(d.present, ?) FROM users u
			LEFT JOIN directory_users d ON d.user_id = u.id WHERE u.source = ?`, false, sourceID)
		if err != nil {
			return fmt.Errorf("sync source %s: %w", sourceID, err)
		}
		for rows.Next() {
			var k known
			var name string
			if err := rows.Scan(&k.id, &name, &k.present); err != nil {
				rows.Close()
				return mapErr(err)
			}
			existing[strings.ToLower(name)] = k
		}
		rows.Close()
		seen := map[string]bool{}
		for _, du := range listed {
			key := strings.ToLower(du.Username)
			if seen[key] {
				continue
			}
			seen[key] = true
			k, ok := existing[key]
			_, created, err := s.upsertDirectoryUser(ctx, c, sourceID, du, ok && k.present)
			switch {
			case errors.Is(err, ErrConflict):
				res.Skipped = append(res.Skipped, du.Username)
			case err != nil:
				return err
			case created:
				res.Added++
			default:
				res.Updated++
			}
		}
		now := micros(s.now())
		for name, k := range existing {
			if seen[name] || !k.present {
				continue
			}
			if _, err := c.exec(ctx, `UPDATE directory_users SET present = ?, synced = ? WHERE user_id = ?`, false, now, k.id); err != nil {
				return fmt.Errorf("sync source %s: %w", sourceID, err)
			}
			if _, err := c.exec(ctx, `UPDATE users SET enabled = ?, updated = ?, updated_by = ? WHERE id = ?`, false, now, "directory-sync", k.id); err != nil {
				return fmt.Errorf("sync source %s: %w", sourceID, err)
			}
			if err := s.endUserSessions(ctx, c, []string{k.id}); err != nil {
				return err
			}
			res.Disabled++
		}
		return s.recomputeRuleGrants(ctx, c)
	})
	return res, err
}

// UpsertDirectoryUser records one user after a successful directory login and re-evaluates rule grants. A
// username held by another source gives ErrConflict.
func (s *Store) UpsertDirectoryUser(ctx context.Context, sourceID string, du DirectoryUser) (*model.User, error) {
	var id string
	err := s.inTx(ctx, func(c conn) error {
		var present bool
		err := c.queryRow(ctx, `SELECT d.present FROM directory_users d JOIN users u ON u.id = d.user_id
			WHERE u.source = ? AND u.username = ?`, sourceID, du.Username).Scan(&present)
		if err = mapErr(err); err != nil && !errors.Is(err, ErrNotExist) {
			return err
		}
		if id, _, err = s.upsertDirectoryUser(ctx, c, sourceID, du, present); err != nil {
			return err
		}
		return s.recomputeRuleGrants(ctx, c)
	})
	if err != nil {
		return nil, fmt.Errorf("record directory user %s: %w", du.Username, err)
	}
	return s.User(ctx, id)
}

// upsertDirectoryUser writes one listed user. A user the directory had dropped (wasPresent false) is enabled again
// on its return; one that stayed keeps the enabled flag an administrator may have set.
func (s *Store) upsertDirectoryUser(ctx context.Context, c conn, sourceID string, du DirectoryUser, wasPresent bool) (id string, created bool, err error) {
	now := micros(s.now())
	groups := make([]string, 0, len(du.Groups))
	for _, g := range du.Groups {
		groups = append(groups, NormalizeDN(g))
	}
	tags := make([]string, 0, len(du.Tags))
	for _, t := range du.Tags {
		tags = append(tags, NormalizeTag(t))
	}
	slices.Sort(groups)
	slices.Sort(tags)
	groupsJSON, _ := json.Marshal(slices.Compact(groups))
	tagsJSON, _ := json.Marshal(slices.Compact(tags))

	var src string
	err = c.queryRow(ctx, `SELECT id, source FROM users WHERE username = ?`, du.Username).Scan(&id, &src)
	switch err = mapErr(err); {
	case errors.Is(err, ErrNotExist):
		id, created = uuid.NewString(), true
		if _, err := c.exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
			id, du.Username, du.Email, du.FullName, true, sourceID, "", now, "directory-sync", now, "directory-sync"); err != nil {
			return "", false, fmt.Errorf("add directory user %s: %w", du.Username, err)
		}
	case err != nil:
		return "", false, err
	case src != sourceID:
		return "", false, fmt.Errorf("directory user %s: username belongs to source %s: %w", du.Username, src, ErrConflict)
	default:
		q := `UPDATE users SET email = ?, full_name = ?, updated = ?, updated_by = ? WHERE id = ?`
		if !wasPresent {
			q = `UPDATE users SET email = ?, full_name = ?, updated = ?, updated_by = ?, enabled = TRUE WHERE id = ?`
		}
		if _, err := c.exec(ctx, q, du.Email, du.FullName, now, "directory-sync", id); err != nil {
			return "", false, fmt.Errorf("update directory user %s: %w", du.Username, err)
		}
	}
	_, err = c.exec(ctx, `INSERT INTO directory_users (user_id, source_id, external_id, member_of, tags, present, synced)
		VALUES (?,?,?,?,?,?,?) ON CONFLICT (user_id) DO UPDATE SET source_id = excluded.source_id,
		external_id = excluded.external_id, member_of = excluded.member_of, tags = excluded.tags,
		present = excluded.present, synced = excluded.synced`,
		id, sourceID, du.ExternalID, string(groupsJSON), string(tagsJSON), true, now)
	if err != nil {
		return "", false, fmt.Errorf("record directory user %s: %w", du.Username, err)
	}
	return id, created, nil
}

// DirectoryInfo is what the last sync or login recorded of a directory user.
type DirectoryInfo struct {
	SourceID   string
	ExternalID string
	Groups     []string
	Tags       []string
	Present    bool
	Synced     time.Time
}

// DirectoryInfo returns the directory record of a user; ErrNotExist for local users.
func (s *Store) DirectoryInfo(ctx context.Context, userID string) (*DirectoryInfo, error) {
	var d DirectoryInfo
	var groups, tags string
	var synced int64
	err := s.conn().queryRow(ctx, `SELECT source_id, external_id, member_of, tags, present, synced FROM directory_users WHERE user_id = ?`,
		userID).Scan(&d.SourceID, &d.ExternalID, &groups, &tags, &d.Present, &synced)
	if err != nil {
		return nil, fmt.Errorf("directory info of %s: %w", userID, mapErr(err))
	}
	json.Unmarshal([]byte(groups), &d.Groups)
	json.Unmarshal([]byte(tags), &d.Tags)
	d.Synced = fromMicros(synced)
	return &d, nil
}

// RuleMember is a user holding a role through one of its rules.
type RuleMember struct {
	UserID, Username string
	Rule             RoleRule
}

// RoleRuleMembers lists who holds the role through a rule, and which rule.
func (s *Store) RoleRuleMembers(ctx context.Context, roleID string) ([]RuleMember, error) {
	rows, err := s.conn().query(ctx, `SELECT u.id, u.username, r.id, r.role_id, r.source_id, r.group_dn, r.tag
		FROM user_rule_roles g JOIN users u ON u.id = g.user_id JOIN role_rules r ON CAST(r.id AS TEXT) = g.rule
		WHERE g.role_id = ? ORDER BY u.username, r.id`, roleID)
	if err != nil {
		return nil, fmt.Errorf("rule members of %s: %w", roleID, err)
	}
	defer rows.Close()
	out := []RuleMember{}
	for rows.Next() {
		var m RuleMember
		if err := rows.Scan(&m.UserID, &m.Username, &m.Rule.ID, &m.Rule.RoleID, &m.Rule.SourceID, &m.Rule.GroupDN, &m.Rule.Tag); err != nil {
			return nil, mapErr(err)
		}
		out = append(out, m)
	}
	return out, mapErr(rows.Err())
}

// ExplicitRoleIDs returns the ids of the roles granted to a user explicitly (not through a rule).
func (s *Store) ExplicitRoleIDs(ctx context.Context, userID string) ([]string, error) {
	rows, err := s.conn().query(ctx, `SELECT role_id FROM user_roles WHERE user_id = ?`, userID)
	if err != nil {
		return nil, fmt.Errorf("explicit roles of %s: %w", userID, err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, mapErr(err)
		}
		out = append(out, id)
	}
	return out, mapErr(rows.Err())
}
