package configapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// body is a configuration object's body: it validates its own fields.
type body interface{ check(c *checker) }

// kind is one collection (or singleton) of the configuration tree.
type kind struct {
	// name is the path below /api/configuration and the type stored in the database.
	name      string
	singleton bool
	// template returns the body that a request's JSON is decoded over: fields a client omits keep these values.
	template func() body
	// defaults are the built-in objects, with negative keys (a singleton has one, under singletonKey).
	defaults []builtin
	// refs lists the body's references to other objects, for checking and for filling in their href.
	refs func(b body) []refSlot
	// prepare, if set, runs on every client write after validation, with the stored body (nil if none): it
	// seals secrets and carries over the stored ones a write leaves out.
	prepare func(s *Service, ctx context.Context, k *kind, key string, b body, old json.RawMessage) error
	// present, if set, turns a stored body into what GET answers (without sealed secrets).
	present func(b json.RawMessage) json.RawMessage
}

type builtin struct {
	key  string
	body body
}

// refSlot is one reference field of a body.
type refSlot struct {
	field  string
	target *kind
	ref    *Ref
}

// singletonKey is the storage key of singleton objects.
const singletonKey = "-1"

func (k *kind) path() string { return configPath + "/" + k.name }

func (k *kind) href(key string) string {
	if k.singleton {
		return k.path()
	}
	return k.path() + "/" + key
}

var (
	kindUserlists = &kind{name: "policies/userlists", template: func() body { return &userlist{Except: []string{}} },
		defaults: []builtin{
			{"-1", &userlist{Name: "all_users", Allow: "all_users", Except: []string{}}},
			{"-2", &userlist{Name: "no_users", Allow: "no_user", Except: []string{}}},
			{"-3", &userlist{Name: "no_root", Allow: "all_users", Except: []string{"root"}}},
			{"-4", &userlist{Name: "root_only", Allow: "no_user", Except: []string{"root"}}},
		}}
	kindAuditPolicies = &kind{name: "policies/audit_policies", template: func() body { return &auditPolicy{Record: true, BodyLimit: 64 << 10, RedactHeaders: []string{}} },
		defaults: []builtin{{"-1", &auditPolicy{Name: "default", Record: true, BodyLimit: 64 << 10, RedactHeaders: []string{}}}}}
	kindChannelPolicies = &kind{name: "http/channel_policies", template: func() body { return &channelPolicy{Rules: []channelRule{}} },
		defaults: []builtin{{"-1", &channelPolicy{Name: "default", Rules: []channelRule{{Channels: []string{"http", "websocket"},
			AllowedFor: allowedFor{GatewayGroups: []string{}, RemoteGroups: []string{}, Userlists: []*Ref{}}}}}}},
		refs: func(b body) []refSlot {
			var out []refSlot
			for i, r := range b.(*channelPolicy).Rules {
				for j, u := range r.AllowedFor.Userlists {
					out = append(out, refSlot{fmt.Sprintf("rules[%d].allowed_for.userlists[%d]", i, j), kindUserlists, u})
				}
			}
			return out
		}}
	kindSettingsPolicies = &kind{name: "http/settings_policies", template: func() body { return defaultSettingsPolicy("") },
		defaults: []builtin{{"-1", defaultSettingsPolicy("default")}}}
	kindAuthPolicies = &kind{name: "http/authentication_policies",
		template: func() body { return &authenticationPolicy{GatewayAuthentication: selection{"proxy_credential"}} },
		defaults: []builtin{{"-1", &authenticationPolicy{Name: "default", GatewayAuthentication: selection{"proxy_credential"}}}}}
	kindOptions = &kind{name: "http/options", singleton: true, template: func() body { return defaultOptions() },
		defaults: []builtin{{singletonKey, defaultOptions()}}}
	kindAAASettings = &kind{name: "aaa/settings", singleton: true, template: func() body { return &aaaSettings{} },
		defaults: []builtin{{singletonKey, &aaaSettings{}}}}
	kindTrustedCALists = &kind{name: "policies/trusted_ca_lists", template: func() body { return &trustedCAList{Certificates: []string{}} }}
	kindSigningCAs     = &kind{name: "policies/signing_cas", template: func() body { return &signingCA{} },
		prepare: (*Service).sealKey, present: presentKeyPair}
	kindX509Identities = &kind{name: "policies/x509_identities", template: func() body { return &x509Identity{} },
		prepare: (*Service).sealKey, present: presentKeyPair}
	kindConnections = &kind{name: "http/connections", template: func() body { c := defaultConnection(); c.Name = ""; c.Network = network{}; return c },
		defaults: []builtin{{"-1", defaultConnectionNamed()}},
		refs: func(b body) []refSlot {
			p := b.(*connection).Policies
			var out []refSlot
			add := func(f string, k *kind, r *Ref) {
				if r != nil {
					out = append(out, refSlot{"policies." + f, k, r})
				}
			}
			add("channel_policy", kindChannelPolicies, p.ChannelPolicy)
			add("settings", kindSettingsPolicies, p.Settings)
			add("audit_policy", kindAuditPolicies, p.AuditPolicy)
			add("authentication_policy", kindAuthPolicies, p.AuthenticationPolicy)
			return append(out, b.(*connection).transportRefs()...)
		}}
)

// kinds lists every collection; the tree is derived from their names.
var kinds = []*kind{kindAAASettings, kindAuthPolicies, kindChannelPolicies, kindConnections, kindOptions, kindSettingsPolicies, kindAuditPolicies, kindUserlists,
	kindTrustedCALists, kindSigningCAs, kindX509Identities}

func kindByName(name string) *kind {
	for _, k := range kinds {
		if k.name == name {
			return k
		}
	}
	return nil
}

func defaultSettingsPolicy(name string) *settingsPolicy {
	return &settingsPolicy{Name: name, IdleTimeout: 900, SessionTimeout: 8 * 3600, ClientTLSMinVersion: "TLSv1_2", ServerTLSMinVersion: "TLSv1_2"}
}

func defaultOptions() *httpOptions {
	o := &httpOptions{}
	o.Service.Enabled = true
	return o
}

func defaultRef(k *kind) *Ref { return &Ref{Key: "-1", Href: k.href("-1")} }

func defaultConnection() *connection {
	return &connection{
		Name:                   "default",
		Active:                 true,
		Network:                network{Clients: []string{"0.0.0.0/0", "::/0"}, Targets: []string{"0.0.0.0/0", "::/0", "*"}, Ports: []int{}},
		ServerAddress:          serverAddress{Selection: "original"},
		SourceAddress:          sourceAddress{Selection: "box_address"},
		WebProxy:               webProxy{Enabled: true, TransportSecurity: tlsChoice{Selection: "disabled"}},
		TransportSecurity:      transportSecurity{Selection: "client-server", AllowNonEncrypted: true, ServerCertificateCheck: &certCheck{Enabled: true}},
		AccessControl:          []accessControl{},
		Indexing:               indexing{Enabled: true, Priority: defaultIndexingPriority},
		LogAuditTrailDownloads: true,
		Policies: connPolicies{ChannelPolicy: defaultRef(kindChannelPolicies), Settings: defaultRef(kindSettingsPolicies),
			AuditPolicy: defaultRef(kindAuditPolicies), AuthenticationPolicy: defaultRef(kindAuthPolicies)},
	}
}

func defaultConnectionNamed() *connection { return defaultConnection() }

// decodeBody parses and validates a request body for k, strictly: unknown fields and wrong types are syntax
// errors naming the field.
func decodeBody(k *kind, raw []byte) (body, error) {
	b := k.template()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(b); err != nil {
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, syntactic("", "the body must be one JSON object")
	}
	c := &checker{}
	b.check(c)
	if c.err != nil {
		return nil, c.err
	}
	if k.refs != nil {
		for _, r := range k.refs(b) {
			if r.ref.Key == "" {
				return nil, semantic(r.field, "a reference needs a key")
			}
			r.ref.Href = r.target.href(r.ref.Key)
		}
	}
	return b, nil
}

// jsonError turns a decoding error into a SyntacticError naming the field where possible.
func jsonError(err error) *Error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return syntactic(te.Field, fmt.Sprintf("must be %s, not %s", jsonTypeName(te.Type.Kind().String()), te.Value))
	case errors.As(err, &se):
		return syntactic("", fmt.Sprintf("malformed JSON at offset %d: %v", se.Offset, err))
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		f, _ = strconv.Unquote(f)
		return syntactic(f, "unknown field "+strconv.Quote(f))
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return syntactic("", "the body must be a JSON object")
	}
	return syntactic("", strings.TrimPrefix(msg, "json: "))
}

func jsonTypeName(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "a list"
	case "struct", "map", "ptr":
		return "an object"
	}
	return "a number"
}

// configView is the configuration as one session sees it: built-in defaults, then committed objects, then the
// session's staged changes.
type configView struct {
	keys   map[string][]string                   // kind name -> keys in listing order
	bodies map[string]map[string]json.RawMessage // kind name -> key -> body
}

func (v *configView) get(k *kind, key string) json.RawMessage { return v.bodies[k.name][key] }

func (v *configView) put(k *kind, key string, b json.RawMessage) {
	if _, ok := v.bodies[k.name][key]; !ok {
		v.keys[k.name] = append(v.keys[k.name], key)
	}
	v.bodies[k.name][key] = b
}

func (v *configView) del(k *kind, key string) {
	delete(v.bodies[k.name], key)
	ks := v.keys[k.name]
	for i, x := range ks {
		if x == key {
			v.keys[k.name] = append(ks[:i:i], ks[i+1:]...)
			break
		}
	}
}

func (v *configView) apply(changes []store.ConfigChange) {
	for _, ch := range changes {
		k := kindByName(ch.Type)
		if k == nil {
			continue
		}
		if ch.Body == nil {
			v.del(k, ch.Key)
		} else {
			v.put(k, ch.Key, ch.Body)
		}
	}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// buildView lays the stored objects over the defaults.
func buildView(objs []store.ConfigObject) *configView {
	v := &configView{keys: map[string][]string{}, bodies: map[string]map[string]json.RawMessage{}}
	for _, k := range kinds {
		v.bodies[k.name] = map[string]json.RawMessage{}
		for _, d := range k.defaults {
			v.put(k, d.key, mustJSON(d.body))
		}
	}
	for _, o := range objs {
		if k := kindByName(o.Type); k != nil {
			v.put(k, o.Key, o.Body)
		}
	}
	return v
}

// committed is the configuration every session sees.
func (s *Service) committed(ctx context.Context) (*configView, error) {
	objs, err := s.Store.ConfigObjects(ctx)
	if err != nil {
		return nil, err
	}
	return buildView(objs), nil
}

// checkReferences validates every reference of every object in v, and that no built-in default is missing.
func checkReferences(v *configView) error {
	for _, k := range kinds {
		for _, d := range k.defaults {
			if v.get(k, d.key) == nil {
				return semantic("", fmt.Sprintf("built-in object %s cannot be deleted", k.href(d.key)))
			}
		}
		if k.refs == nil {
			continue
		}
		for _, key := range v.keys[k.name] {
			b, err := decodeBody(k, v.get(k, key))
			if err != nil {
				var e *Error
				if errors.As(err, &e) {
					e.Message = k.href(key) + ": " + e.Message
				}
				return err
			}
			for _, r := range k.refs(b) {
				if v.get(r.target, r.ref.Key) == nil {
					return semantic(r.field, fmt.Sprintf("%s refers to %s, which does not exist", k.href(key), r.target.href(r.ref.Key)))
				}
			}
		}
	}
	return nil
}
