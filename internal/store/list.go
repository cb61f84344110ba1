package store

import (
	"fmt"
	"strings"
)

// ListOptions are the paging, sorting and filtering parameters every list endpoint takes.
type ListOptions struct {
	Offset  int
	Limit   int    // 0 means the default of 50; at most 1000
	SortKey string // a field name of the listed object; unknown keys are rejected by the caller
	SortDir string // "asc" (default) or "desc"
	Filter  string // case-insensitive substring of the object's name-like fields
}

// Page limits.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// clause renders ORDER BY, LIMIT and OFFSET for opts, with sortable mapping the API's sort keys to columns.
func (o ListOptions) clause(sortable map[string]string, fallback string) (string, error) {
	col := fallback
	if o.SortKey != "" {
		c, ok := sortable[o.SortKey]
		if !ok {
			return "", fmt.Errorf("%w: sortkey %q", ErrBadQuery, o.SortKey)
		}
		col = c
	}
	dir := "ASC"
	switch strings.ToLower(o.SortDir) {
	case "", "asc":
	case "desc":
		dir = "DESC"
	default:
		return "", fmt.Errorf("%w: sortdir %q", ErrBadQuery, o.SortDir)
	}
	limit := o.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	if limit > MaxLimit {
		limit = MaxLimit
	}
	if o.Offset < 0 {
		return "", fmt.Errorf("%w: offset must not be negative", ErrBadQuery)
	}
	// The column names come from the map above, never from the request, so this concatenation is safe.
	return fmt.Sprintf(" ORDER BY %s %s, id ASC LIMIT %d OFFSET %d", col, dir, limit, o.Offset), nil
}

// likePattern makes a LIKE pattern matching filter as a substring, with its wildcards escaped.
func likePattern(filter string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(filter)) + "%"
}

// ErrBadQuery is returned for list options that cannot be honoured.
var ErrBadQuery = fmt.Errorf("store: bad query")
