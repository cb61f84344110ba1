package store

import (
	"errors"
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
			return "", &BadQueryError{Param: "sortkey", Msg: fmt.Sprintf("sortkey %q", o.SortKey)}
		}
		col = c
	}
	dir := "ASC"
	switch strings.ToLower(o.SortDir) {
	case "", "asc":
	case "desc":
		dir = "DESC"
	default:
		return "", &BadQueryError{Param: "sortdir", Msg: fmt.Sprintf("sortdir %q", o.SortDir)}
	}
	limit := o.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	if limit > MaxLimit {
		limit = MaxLimit
	}
	if o.Offset < 0 {
		return "", &BadQueryError{Param: "offset", Msg: "offset must not be negative"}
	}
	// The column names come from the map above, never from the request, so this concatenation is safe.
	return fmt.Sprintf(" ORDER BY %s %s, id ASC LIMIT %d OFFSET %d", col, dir, limit, o.Offset), nil
}

// likePattern makes a LIKE pattern matching filter as a substring, with its wildcards escaped.
func likePattern(filter string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(filter)) + "%"
}

// ErrBadQuery is matched by every *BadQueryError: list options or a search that cannot be honoured.
var ErrBadQuery = errors.New("store: bad query")

// BadQueryError is a query the store refuses, naming the parameter at fault as the APIs call it ("sortkey",
// "offset"), or "" when no one parameter is.
type BadQueryError struct {
	Param, Msg string
}

func (e *BadQueryError) Error() string        { return ErrBadQuery.Error() + ": " + e.Msg }
func (e *BadQueryError) Is(target error) bool { return target == ErrBadQuery }
