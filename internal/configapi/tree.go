package configapi

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// dirs maps each directory of the tree to its children's names, sorted; collections and singletons are leaves.
var dirs = buildDirs()

func buildDirs() map[string][]string {
	d := map[string][]string{
		rootPath:     {"audit", "authentication", "configuration", "endpoints", "transaction", "user_info"},
		"/api/audit": {"sessions"},
	}
	add := func(parent, child string) {
		if !slices.Contains(d[parent], child) {
			d[parent] = append(d[parent], child)
		}
	}
	for _, k := range kinds {
		parent := configPath
		for _, seg := range strings.Split(k.name, "/") {
			add(parent, seg)
			parent += "/" + seg
		}
	}
	for p := range d {
		slices.Sort(d[p])
	}
	return d
}

// meta is the navigation object of every answer.
type meta struct {
	First       string `json:"first,omitempty"`
	Href        string `json:"href"`
	Last        string `json:"last,omitempty"`
	Next        string `json:"next,omitempty"`
	Parent      string `json:"parent,omitempty"`
	Previous    string `json:"previous,omitempty"`
	Transaction string `json:"transaction"`
	MatchCount  *int   `json:"match_count,omitempty"`
}

// navMeta is the meta of href among its siblings, whose hrefs are parent + "/" + name.
func navMeta(href, parent string, siblings []string) meta {
	m := meta{Href: href, Parent: parent, Transaction: transactionPath}
	if len(siblings) == 0 {
		return m
	}
	abs := func(name string) string { return parent + "/" + name }
	i := slices.IndexFunc(siblings, func(s string) bool { return abs(s) == href })
	m.First, m.Last = abs(siblings[0]), abs(siblings[len(siblings)-1])
	if i > 0 {
		m.Previous = abs(siblings[i-1])
	}
	if i >= 0 && i < len(siblings)-1 {
		m.Next = abs(siblings[i+1])
	}
	return m
}

func parentOf(p string) string {
	if p == rootPath {
		return ""
	}
	return p[:strings.LastIndexByte(p, '/')]
}

// pathMeta is the meta of a directory or collection: its siblings in the parent directory.
func pathMeta(p string) meta {
	if p == rootPath {
		return meta{Href: rootPath, Transaction: transactionPath}
	}
	return navMeta(p, parentOf(p), dirs[parentOf(p)])
}

type item struct {
	Key  string `json:"key"`
	Meta struct {
		Href string `json:"href"`
	} `json:"meta"`
}

func items(parent string, keys []string) []item {
	out := make([]item, 0, len(keys))
	for _, k := range keys {
		it := item{Key: k}
		it.Meta.Href = parent + "/" + k
		out = append(out, it)
	}
	return out
}

// tree serves /api, /api/audit and everything under /api/configuration.
func (s *Service) tree(w http.ResponseWriter, r *http.Request, c *caller) error {
	p := strings.TrimSuffix(r.URL.Path, "/")
	if children, ok := dirs[p]; ok {
		if r.Method != http.MethodGet {
			return unsupportedMethod(r.Method)
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": items(p, children), "meta": pathMeta(p)})
		return nil
	}
	if !strings.HasPrefix(p, configPath+"/") {
		return notFound("no such resource")
	}
	rel := strings.TrimPrefix(p, configPath+"/")
	if k := kindByName(rel); k != nil {
		if k.singleton {
			return s.object(w, r, c, k, singletonKey)
		}
		return s.collection(w, r, c, k)
	}
	i := strings.LastIndexByte(rel, '/')
	if k := kindByName(rel[:max(i, 0)]); k != nil && !k.singleton {
		return s.object(w, r, c, k, rel[i+1:])
	}
	return notFound("no such resource")
}

func (s *Service) collection(w http.ResponseWriter, r *http.Request, c *caller, k *kind) error {
	switch r.Method {
	case http.MethodGet:
		v, _, err := s.sessionView(r, c)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": items(k.path(), v.keys[k.name]), "meta": pathMeta(k.path())})
		return nil
	case http.MethodPost:
		key := uuid.NewString()
		if err := s.write(r, c, k, key, true); err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, map[string]any{"key": key, "meta": map[string]string{
			"href": k.href(key), "parent": k.path(), "transaction": transactionPath}})
		return nil
	}
	return unsupportedMethod(r.Method)
}

func (s *Service) object(w http.ResponseWriter, r *http.Request, c *caller, k *kind, key string) error {
	switch r.Method {
	case http.MethodGet:
		v, _, err := s.sessionView(r, c)
		if err != nil {
			return err
		}
		b := v.get(k, key)
		if b == nil {
			return notFound("the requested object does not exist")
		}
		if k.present != nil {
			b = k.present(b)
		}
		if k.singleton {
			writeJSON(w, http.StatusOK, map[string]any{"body": b, "meta": pathMeta(k.path())})
			return nil
		}
		writeJSON(w, http.StatusOK, map[string]any{"key": key, "body": b, "meta": navMeta(k.href(key), k.path(), v.keys[k.name])})
		return nil
	case http.MethodPut:
		if err := s.write(r, c, k, key, false); err != nil {
			return err
		}
		m := map[string]string{"href": k.href(key), "parent": parentOf(k.href(key)), "transaction": transactionPath}
		if k.singleton {
			writeJSON(w, http.StatusOK, map[string]any{"meta": m})
		} else {
			writeJSON(w, http.StatusOK, map[string]any{"key": key, "meta": m})
		}
		return nil
	case http.MethodDelete:
		if k.singleton {
			return unsupportedMethod(r.Method)
		}
		if strings.HasPrefix(key, "-") {
			return semantic("key", "built-in objects (negative keys) cannot be deleted")
		}
		if err := s.remove(r, c, k, key); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"meta": map[string]string{"href": k.href(key), "parent": k.path(), "transaction": transactionPath}})
		return nil
	}
	return unsupportedMethod(r.Method)
}

// write stages a create (POST) or replace (PUT) of k/key, opening a transaction if the session has none.
func (s *Service) write(r *http.Request, c *caller, k *kind, key string, create bool) error {
	if err := mayChange(c, k.name); err != nil {
		return err
	}
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err != nil {
		return syntactic("", "the body is too large or unreadable")
	}
	b, err := decodeBody(k, raw)
	if err != nil {
		return err
	}
	tx, err := s.writableTransaction(r, c)
	if err != nil {
		return err
	}
	committed, err := s.committed(r.Context())
	if err != nil {
		return err
	}
	v, _ := s.viewWith(committed, tx.Changes)
	exists := v.get(k, key) != nil
	if !create && !exists {
		return notFound("the requested object does not exist; create objects with POST to " + k.path())
	}
	if err := mayChangeObject(c, k, committed.get(k, key), b); err != nil {
		return err
	}
	if k.refs != nil {
		for _, ref := range k.refs(b) {
			if v.get(ref.target, ref.ref.Key) == nil {
				return semantic(ref.field, "refers to "+ref.target.href(ref.ref.Key)+", which does not exist")
			}
		}
	}
	if k.prepare != nil {
		if err := k.prepare(s, r.Context(), k, key, b, v.get(k, key)); err != nil {
			return err
		}
	}
	ch := store.ConfigChange{Type: k.name, Key: key, Body: mustJSON(b)}
	return s.Store.SaveConfigTransaction(r.Context(), s.now(), c.Holder, stage(tx.Changes, ch, committed.get(k, key) != nil))
}

func (s *Service) remove(r *http.Request, c *caller, k *kind, key string) error {
	if err := mayChange(c, k.name); err != nil {
		return err
	}
	tx, err := s.writableTransaction(r, c)
	if err != nil {
		return err
	}
	committed, err := s.committed(r.Context())
	if err != nil {
		return err
	}
	v, _ := s.viewWith(committed, tx.Changes)
	if v.get(k, key) == nil {
		return notFound("the requested object does not exist")
	}
	ch := store.ConfigChange{Type: k.name, Key: key}
	return s.Store.SaveConfigTransaction(r.Context(), s.now(), c.Holder, stage(tx.Changes, ch, committed.get(k, key) != nil))
}

// stage adds ch to changes, keeping one change per object: a later change replaces an earlier one, and deleting
// an object created in the same transaction forgets it.
func stage(changes []store.ConfigChange, ch store.ConfigChange, committedExists bool) []store.ConfigChange {
	out := slices.Clone(changes)
	i := slices.IndexFunc(out, func(x store.ConfigChange) bool { return x.Type == ch.Type && x.Key == ch.Key })
	switch {
	case i < 0:
		return append(out, ch)
	case ch.Body == nil && !committedExists:
		return slices.Delete(out, i, i+1)
	}
	out[i] = ch
	return out
}

// viewWith is the committed view with changes applied.
func (s *Service) viewWith(committed *configView, changes []store.ConfigChange) (*configView, error) {
	v := &configView{keys: map[string][]string{}, bodies: map[string]map[string]json.RawMessage{}}
	for name, ks := range committed.keys {
		v.keys[name] = slices.Clone(ks)
	}
	for name, m := range committed.bodies {
		v.bodies[name] = map[string]json.RawMessage{}
		for key, b := range m {
			v.bodies[name][key] = b
		}
	}
	v.apply(changes)
	return v, nil
}
