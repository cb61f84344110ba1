package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// resource describes one kind of object of the service API, so list, get and delete are written once. Each
// command group hands its resource to the generic subcommands with a kong Provide method.
type resource struct {
	noun      string // for messages: "user", "role", ...
	path      string // the collection: GET lists, POST creates, /{id} is one object
	nameField string // the unique human name, so commands accept a name wherever an id goes
	columns   []column
	owner     string // for per-user collections (credentials): the owner's id, or "current"
}

func (r *resource) item(id string) string { return r.path + "/" + url.PathEscape(id) }

// fetch returns the object named by ref, an id or a name. Ids are tried first; a name is looked up with the
// list filter and must match exactly.
func (r *resource) fetch(ctx context.Context, c *apiClient, ref string) (string, json.RawMessage, error) {
	var raw json.RawMessage
	err := c.get(ctx, r.item(ref), nil, &raw)
	if err == nil {
		var obj struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			return "", nil, fmt.Errorf("decode %s: %w", r.noun, err)
		}
		return obj.ID, raw, nil
	}
	if !isNotFound(err) || r.nameField == "" {
		return "", nil, err
	}
	items, lerr := c.listAll(ctx, r.path, url.Values{"filter": {ref}})
	if lerr != nil {
		return "", nil, lerr
	}
	for _, it := range items {
		var obj map[string]any
		if json.Unmarshal(it, &obj) != nil {
			continue
		}
		if name, _ := obj[r.nameField].(string); name == ref {
			// A list item can be a summary (an API client's lists no secrets); get the object itself.
			id, _ := obj["id"].(string)
			var full json.RawMessage
			if err := c.get(ctx, r.item(id), nil, &full); err != nil {
				return "", nil, err
			}
			return id, full, nil
		}
	}
	return "", nil, fmt.Errorf("no %s with id or %s %q", r.noun, r.nameField, ref)
}

// resolve returns the id of the object named by ref (an id or a name).
func (r *resource) resolve(ctx context.Context, c *apiClient, ref string) (string, error) {
	id, _, err := r.fetch(ctx, c, ref)
	return id, err
}

// listFlags are the list parameters every collection takes.
type listFlags struct {
	Filter  string `help:"Only objects whose name (or other searchable text) contains this."`
	SortKey string `name:"sort-key" help:"Field to sort by (name, created, updated, ...)."`
	SortDir string `name:"sort-dir" enum:",asc,desc" default:"" help:"Sort direction: asc or desc."`
}

func (l listFlags) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"filter": l.Filter, "sortkey": l.SortKey, "sortdir": l.SortDir} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

type listCmd struct {
	listFlags
	outputFlags
}

func (c *listCmd) Run(g *Globals, r *resource) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	items, err := api.listAll(g.Ctx, r.path, c.query())
	if err != nil {
		return err
	}
	return printList(g.Stdout, c.outputFlags, items, r.columns)
}

type getCmd struct {
	ID string `arg:"" name:"id-or-name" help:"Id or name of the object."`
	outputFlags
}

func (c *getCmd) Run(g *Globals, r *resource) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	_, raw, err := r.fetch(g.Ctx, api, c.ID)
	if err != nil {
		return err
	}
	return printObject(g.Stdout, c.outputFlags, raw)
}

type deleteCmd struct {
	ID string `arg:"" name:"id-or-name" help:"Id or name of the object."`
}

func (c *deleteCmd) Run(g *Globals, r *resource) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	id, err := r.resolve(g.Ctx, api, c.ID)
	if err != nil {
		return err
	}
	if err := api.call(g.Ctx, http.MethodDelete, r.item(id), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(g.Stdout, "deleted %s %s\n", r.noun, id)
	return nil
}

// create posts body to the collection and prints the new id (alone in table mode, so scripts can capture it).
func create(g *Globals, r *resource, out outputFlags, body json.RawMessage) (string, error) {
	api, err := newAPIClient()
	if err != nil {
		return "", err
	}
	var res struct {
		ID string `json:"id"`
	}
	if err := api.call(g.Ctx, http.MethodPost, r.path, body, &res); err != nil {
		return "", err
	}
	if out.json() {
		return res.ID, printJSON(g.Stdout, res)
	}
	fmt.Fprintln(g.Stdout, res.ID)
	return res.ID, nil
}

// update resolves ref, puts body and prints the object the server answers.
func update(g *Globals, r *resource, out outputFlags, ref string, body json.RawMessage) error {
	api, err := newAPIClient()
	if err != nil {
		return err
	}
	id, err := r.resolve(g.Ctx, api, ref)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := api.call(g.Ctx, http.MethodPut, r.item(id), body, &raw); err != nil {
		return err
	}
	if len(raw) == 0 {
		if err := api.get(g.Ctx, r.item(id), nil, &raw); err != nil {
			return err
		}
	}
	return printObject(g.Stdout, out, raw)
}

// bodyFlag is -f for create and update.
type bodyFlag struct {
	File string `short:"f" name:"file" placeholder:"FILE" help:"Read the request body from a JSON or YAML file (- for standard input); flags given as well override its fields."`
}

// body reads -f if given and lays the flag fields over it.
func (b bodyFlag) body(g *Globals, flags map[string]any) (json.RawMessage, error) {
	var file json.RawMessage
	if b.File != "" {
		var err error
		if file, err = readBodyFile(b.File, g.Stdin); err != nil {
			return nil, err
		}
	}
	return mergeBody(file, flags)
}

// refs turns role names or ids into the API's [{"id"}] references. Empty names are skipped, so `--role ""` asks
// for no roles at all.
func refs(ctx context.Context, api *apiClient, r *resource, names []string) ([]map[string]string, error) {
	out := make([]map[string]string, 0, len(names))
	for _, n := range names {
		if n == "" {
			continue
		}
		id, err := r.resolve(ctx, api, n)
		if err != nil {
			return nil, err
		}
		out = append(out, map[string]string{"id": id})
	}
	return out, nil
}
