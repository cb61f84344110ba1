package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/google/uuid"
)

// Host is a host of the host store: a machine or service known by a common name, its addresses and the services
// it offers. Hosts are inventory: they carry no secrets, so the whole document is stored in clear.
type Host struct {
	ID                 string        `json:"id"`
	CommonName         string        `json:"common_name"`
	ExternalID         string        `json:"external_id,omitempty"`
	InstanceID         string        `json:"instance_id,omitempty"`
	SourceID           string        `json:"source_id,omitempty"`
	Organization       string        `json:"organization,omitempty"`
	OrganizationalUnit string        `json:"organizational_unit,omitempty"`
	Zone               string        `json:"zone,omitempty"`
	HostType           string        `json:"host_type,omitempty"`
	HostClassification string        `json:"host_classification,omitempty"`
	Comment            string        `json:"comment,omitempty"`
	DistinguishedName  string        `json:"distinguished_name,omitempty"`
	Addresses          []string      `json:"addresses"`
	Services           []HostService `json:"services"`
	Tags               []string      `json:"tags"`
	// Source says where the host came from: "local" for hosts entered through the API, otherwise the kind of
	// directory that supplied it.
	Source string `json:"source"`
	model.Meta
}

// HostService is one service a host offers, such as SSH on port 22 of one of its addresses.
type HostService struct {
	Service string `json:"service"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	Source  string `json:"source"`
}

// HostQuery narrows a host list. Every criterion given must hold.
type HostQuery struct {
	// Keywords must each occur, case-insensitively, in the host's names, comment, addresses, tags or services.
	Keywords []string
	// Tags must each be on the host, exactly.
	Tags []string
	// Source, if set, is the host's source.
	Source string
}

const hostColumns = `id, common_name, name_key, source, external_id, search_text, body, created, author, updated, updated_by`

// hostSortKeys maps the API's sort keys to columns. Common names sort without case, as they compare.
var hostSortKeys = map[string]string{
	"common_name": "name_key", "source": "source", "created": "created", "updated": "updated",
}

func scanHost(row interface{ Scan(...any) error }) (*Host, error) {
	var h Host
	var id, name, key, source, extID, search, body, author, updatedBy string
	var created, updated int64
	if err := row.Scan(&id, &name, &key, &source, &extID, &search, &body, &created, &author, &updated, &updatedBy); err != nil {
		return nil, mapErr(err)
	}
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		return nil, fmt.Errorf("host %s body: %w", id, err)
	}
	h.ID, h.CommonName, h.Source, h.ExternalID = id, name, source, extID
	h.Created, h.Author, h.Updated, h.UpdatedBy = fromMicros(created), author, fromMicros(updated), updatedBy
	if h.Addresses == nil {
		h.Addresses = []string{}
	}
	if h.Services == nil {
		h.Services = []HostService{}
	}
	if h.Tags == nil {
		h.Tags = []string{}
	}
	return &h, nil
}

// hostSearchText is what keywords and the list filter search: the host's words, lower-cased, one field a line so
// that no match spans two fields.
func hostSearchText(h *Host) string {
	words := []string{h.CommonName, h.Comment, h.ExternalID, h.InstanceID, h.Organization, h.OrganizationalUnit,
		h.Zone, h.HostType, h.HostClassification, h.DistinguishedName}
	words = append(words, h.Addresses...)
	words = append(words, h.Tags...)
	for _, s := range h.Services {
		words = append(words, s.Service, s.Address)
	}
	return strings.ToLower(strings.Join(slices.DeleteFunc(words, func(s string) bool { return s == "" }), "\n"))
}

// writeHost inserts or replaces the host's row and its tag index.
func writeHost(ctx context.Context, q conn, h *Host, insert bool) error {
	body, err := json.Marshal(h)
	if err != nil {
		return err
	}
	key, search := strings.ToLower(h.CommonName), hostSearchText(h)
	if insert {
		_, err = q.exec(ctx, `INSERT INTO hosts (`+hostColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
			h.ID, h.CommonName, key, h.Source, h.ExternalID, search, string(body),
			micros(h.Created), h.Author, micros(h.Updated), h.UpdatedBy)
	} else {
		res, uerr := q.exec(ctx, `UPDATE hosts SET common_name = ?, name_key = ?, source = ?, external_id = ?, search_text = ?,
			body = ?, updated = ?, updated_by = ? WHERE id = ?`,
			h.CommonName, key, h.Source, h.ExternalID, search, string(body), micros(h.Updated), h.UpdatedBy, h.ID)
		err = affectedOne(res, uerr)
	}
	if err != nil {
		return err
	}
	if _, err := q.exec(ctx, `DELETE FROM host_tags WHERE host_id = ?`, h.ID); err != nil {
		return err
	}
	for _, tag := range h.Tags {
		if _, err := q.exec(ctx, `INSERT INTO host_tags (host_id, tag) VALUES (?, ?)`, h.ID, tag); err != nil {
			return err
		}
	}
	return nil
}

// CreateHost stores h, assigning its id and times. A common name already in use, in any case, is ErrConflict.
func (s *Store) CreateHost(ctx context.Context, h *Host, actor string) error {
	h.ID = uuid.NewString()
	now := s.now()
	h.Created, h.Updated, h.Author, h.UpdatedBy = now, now, actor, actor
	if h.Source == "" {
		h.Source = "local"
	}
	err := s.inTx(ctx, func(q conn) error { return writeHost(ctx, q, h, true) })
	if err != nil {
		return fmt.Errorf("create host: %w", err)
	}
	return nil
}

// Host returns the host with id.
func (s *Store) Host(ctx context.Context, id string) (*Host, error) {
	h, err := scanHost(s.conn().queryRow(ctx, `SELECT `+hostColumns+` FROM hosts WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("get host %s: %w", id, err)
	}
	return h, nil
}

// UpdateHost replaces the host with h, keeping its creation record.
func (s *Store) UpdateHost(ctx context.Context, h *Host, actor string) error {
	h.Updated, h.UpdatedBy = s.now(), actor
	if h.Source == "" {
		h.Source = "local"
	}
	err := s.inTx(ctx, func(q conn) error { return writeHost(ctx, q, h, false) })
	if err != nil {
		return fmt.Errorf("update host %s: %w", h.ID, err)
	}
	return nil
}

// DeleteHost removes the host and its tags.
func (s *Store) DeleteHost(ctx context.Context, id string) error {
	res, err := s.conn().exec(ctx, `DELETE FROM hosts WHERE id = ?`, id)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("delete host %s: %w", id, err)
	}
	return nil
}

// ListHosts returns a page of the hosts matching q and opts.Filter, and how many match in all.
func (s *Store) ListHosts(ctx context.Context, q HostQuery, opts ListOptions) ([]*Host, int, error) {
	tail, err := opts.clause(hostSortKeys, "name_key")
	if err != nil {
		return nil, 0, err
	}
	var conds []string
	var args []any
	words := q.Keywords
	if opts.Filter != "" {
		words = append(slices.Clip(words), opts.Filter)
	}
	for _, w := range words {
		conds = append(conds, `search_text LIKE ? ESCAPE '\'`)
		args = append(args, likePattern(w))
	}
	for _, tag := range q.Tags {
		conds = append(conds, `EXISTS (SELECT 1 FROM host_tags t WHERE t.host_id = hosts.id AND t.tag = ?)`)
		args = append(args, tag)
	}
	if q.Source != "" {
		conds = append(conds, `source = ?`)
		args = append(args, q.Source)
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	c := s.conn()
	var total int
	if err := c.queryRow(ctx, `SELECT COUNT(*) FROM hosts`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count hosts: %w", mapErr(err))
	}
	rows, err := c.query(ctx, `SELECT `+hostColumns+` FROM hosts`+where+tail, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("list hosts: %w", err)
	}
	defer rows.Close()
	var out []*Host
	for rows.Next() {
		h, err := scanHost(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("list hosts: %w", err)
		}
		out = append(out, h)
	}
	return out, total, mapErr(rows.Err())
}
