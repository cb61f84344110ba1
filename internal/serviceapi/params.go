package serviceapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// maxBody bounds request bodies; the largest legitimate one is a target with a PEM bundle.
const maxBody = 1 << 20

// decode reads a JSON body into v strictly: unknown fields and trailing data are errors naming the property.
func decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: "UNSUPPORTED_MEDIA_TYPE", Message: "request body must be application/json"}
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return badRequest("", "request body has data after the JSON value")
	}
	return nil
}

func decodeError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var own *Error
	switch {
	case errors.As(err, &own):
		// A field's own UnmarshalJSON (disabled, source_rules) already named the property.
		return own
	case errors.Is(err, io.EOF):
		return badRequest("", "request body is empty")
	case errors.As(err, &se):
		return badRequest("", fmt.Sprintf("malformed JSON at offset %d", se.Offset))
	case errors.As(err, &te):
		return badRequest(te.Field, fmt.Sprintf("%s must be %s", te.Field, te.Type))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest(field, fmt.Sprintf("unknown field %q", field))
	}
	return badRequest("", "malformed JSON: "+err.Error())
}

// listOptions parses offset, limit, sortkey, sortdir and filter.
func listOptions(r *http.Request) (store.ListOptions, error) {
	q := r.URL.Query()
	var o store.ListOptions
	for _, p := range []struct {
		name string
		dst  *int
		max  int
	}{{"offset", &o.Offset, 1 << 30}, {"limit", &o.Limit, store.MaxLimit}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > p.max {
				return o, badRequest(p.name, fmt.Sprintf("%s must be a whole number from 0 to %d", p.name, p.max))
			}
			*p.dst = n
		}
	}
	o.SortKey = q.Get("sortkey")
	o.SortDir = strings.ToLower(q.Get("sortdir"))
	if o.SortDir != "" && o.SortDir != "asc" && o.SortDir != "desc" {
		return o, badRequest("sortdir", "sortdir must be asc or desc")
	}
	o.Filter = q.Get("filter")
	return o, nil
}

// list is the service API's list shape.
type list[T any] struct {
	Count int `json:"count"`
	Items []T `json:"items"`
}

func newList[T any](items []T, count int) list[T] {
	if items == nil {
		items = []T{}
	}
	return list[T]{Count: count, Items: items}
}

// created is the answer to a create.
type created struct {
	ID string `json:"id"`
}

// pageList answers a list built in memory (role members, roles found by name) with the request's paging: filter
// (a case-insensitive substring of the name), sortkey name, sortdir, offset and limit (DefaultLimit when absent).
// count is the number of matches before offset and limit, as the store's lists count.
func pageList[T any](r *http.Request, items []T, name func(T) string) (list[T], error) {
	o, err := listOptions(r)
	if err != nil {
		return list[T]{}, err
	}
	if o.SortKey != "" && o.SortKey != "name" {
		return list[T]{}, badRequest("sortkey", "this list sorts by name only")
	}
	var hit []T
	for _, it := range items {
		if o.Filter == "" || strings.Contains(strings.ToLower(name(it)), strings.ToLower(o.Filter)) {
			hit = append(hit, it)
		}
	}
	if o.SortKey != "" || o.SortDir != "" {
		slices.SortStableFunc(hit, func(x, y T) int {
			if o.SortDir == "desc" {
				return strings.Compare(name(y), name(x))
			}
			return strings.Compare(name(x), name(y))
		})
	}
	total := len(hit)
	if o.Limit == 0 {
		o.Limit = store.DefaultLimit
	}
	hit = hit[min(o.Offset, total):min(o.Offset+o.Limit, total)]
	return newList(hit, total), nil
}
