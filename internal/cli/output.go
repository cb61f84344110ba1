package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"
)

// outputFlags is embedded in every command that prints objects.
type outputFlags struct {
	Output string `short:"o" enum:"table,json" default:"table" help:"Output format: table (aligned columns) or json (the API's JSON)."`
}

func (o outputFlags) json() bool { return o.Output == "json" }

// column is one column of a list table: a header and a dotted path into each item's JSON. A path that crosses an
// array yields the values of every element, joined with commas.
type column struct {
	header string
	path   string
}

// printList prints items as a table with cols, or as the API's {"count","items"} JSON.
func printList(w io.Writer, out outputFlags, items []json.RawMessage, cols []column) error {
	if out.json() {
		if items == nil {
			items = []json.RawMessage{}
		}
		return printJSON(w, map[string]any{"count": len(items), "items": items})
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	headers := make([]string, len(cols))
	for i, c := range cols {
		headers[i] = c.header
	}
	fmt.Fprintln(tw, strings.Join(headers, "\t"))
	for _, raw := range items {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("decode item: %w", err)
		}
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = cell(lookup(v, c.path))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// printObject prints one object: in table mode one line per top-level field, in the order the server sent them.
func printObject(w io.Writer, out outputFlags, raw json.RawMessage) error {
	if out.json() {
		return printJSON(w, raw)
	}
	fields, err := orderedFields(raw)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range fields {
		var v any
		if err := json.Unmarshal(f.value, &v); err != nil {
			return fmt.Errorf("decode field %s: %w", f.key, err)
		}
		s := cell(v)
		if s == "" {
			s = "-"
		}
		// PEM and other multi-line values would break the columns; show them on their own lines.
		if strings.Contains(s, "\n") {
			tw.Flush()
			fmt.Fprintf(w, "%s:\n", strings.ToUpper(f.key))
			fmt.Fprintln(w, strings.TrimRight(s, "\n"))
			continue
		}
		fmt.Fprintf(tw, "%s:\t%s\n", strings.ToUpper(f.key), s)
	}
	return tw.Flush()
}

// printJSON writes v indented. A json.RawMessage is re-indented as it is, keeping the server's field order.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

type field struct {
	key   string
	value json.RawMessage
}

// orderedFields splits a JSON object into its fields in document order, which a map would lose.
func orderedFields(raw json.RawMessage) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("decode answer: expected a JSON object")
	}
	var out []field
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("decode answer: %w", err)
		}
		key, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("decode answer: %w", err)
		}
		out = append(out, field{key, v})
	}
	return out, nil
}

// lookup follows a dotted path through decoded JSON; arrays are mapped element by element.
func lookup(v any, path string) any {
	if path == "" {
		return v
	}
	head, rest, _ := strings.Cut(path, ".")
	switch x := v.(type) {
	case map[string]any:
		return lookup(x[head], rest)
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			out = append(out, lookup(e, path))
		}
		return out
	}
	return nil
}

// cell renders a decoded JSON value for a table: scalars plainly, times shortened, arrays joined with commas,
// objects by their name (or id) when they are references, else as compact JSON.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
			return t.UTC().Format("2006-01-02 15:04:05Z")
		}
		return x
	case bool:
		if x {
			return "yes"
		}
		return "no"
	case float64:
		return fmt.Sprint(x)
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			if s := cell(e); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, ",")
	case map[string]any:
		if name, ok := x["name"].(string); ok && name != "" {
			return name
		}
		if id, ok := x["id"].(string); ok && len(x) == 1 {
			return id
		}
		b, _ := json.Marshal(x)
		return string(b)
	}
	return fmt.Sprint(v)
}

// readBodyFile reads a request body from a JSON or YAML file ("-" is standard input) and returns it as JSON.
// YAML is accepted because hand-written target definitions with endpoint lists read better in it.
func readBodyFile(path string, stdin io.Reader) (json.RawMessage, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read body file: %w", err)
	}
	if json.Valid(b) {
		return b, nil
	}
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("body file %s is neither JSON nor YAML: %w", path, err)
	}
	if v == nil {
		return nil, fmt.Errorf("body file %s is empty", path)
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("body file %s: %w", path, err)
	}
	return j, nil
}

// mergeBody lays the fields set by flags over a body read with -f, so flags win over the file.
func mergeBody(file json.RawMessage, flags map[string]any) (json.RawMessage, error) {
	if file == nil {
		return json.Marshal(flags)
	}
	if len(flags) == 0 {
		return file, nil
	}
	var m map[string]any
	if err := json.Unmarshal(file, &m); err != nil {
		return nil, fmt.Errorf("body file must hold a JSON object: %w", err)
	}
	for k, v := range flags {
		m[k] = v
	}
	return json.Marshal(m)
}

// hasField reports whether the JSON object body has key at its top level.
func hasField(body json.RawMessage, key string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return false
	}
	_, ok := m[key]
	return ok
}
