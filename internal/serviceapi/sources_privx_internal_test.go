package serviceapi

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/directory"
)

// TestSourcePrivXFieldsRefused sets each PrivX-only field of the SDK's source body (the golden one, marshalled from
// its rolestore.Source) to a non-zero value, one at a time, and expects NOT_SUPPORTED naming exactly that field; the
// golden body itself, all zeros, decodes, with ldap_base_dn taking effect as ldap_base.
func TestSourcePrivXFieldsRefused(t *testing.T) {
	raw, err := os.ReadFile("testdata/privx/requests/source_create.json")
	if err != nil {
		t.Fatal(err)
	}
	golden := strings.NewReplacer("{{name}}", "walk", "{{bind_password}}", "pw").Replace(string(raw))
	decodeBody := func(body any) error {
		b, _ := json.Marshal(body)
		r := httptest.NewRequest("POST", "/role-store/api/v1/sources", strings.NewReader(string(b)))
		r.Header.Set("Content-Type", "application/json")
		src, err := decodeSource(r, nil)
		if err == nil && src.Connection.LDAPBase != "dc=example,dc=org" {
			t.Errorf("ldap_base_dn did not become ldap_base: %q", src.Connection.LDAPBase)
		}
		return err
	}
	var base map[string]any
	if err := json.Unmarshal([]byte(golden), &base); err != nil {
		t.Fatal(err)
	}
	if err := decodeBody(base); err != nil {
		t.Fatalf("the SDK's body is refused: %v", err)
	}
	nonZero := func(cur any) any {
		switch cur.(type) {
		case bool:
			return true
		case float64:
			return 7.0
		case string:
			return "x"
		}
		return []any{"x"} // a list or a map the SDK sends as null
	}
	check := func(field, property string, set func(m map[string]any)) {
		t.Run(property, func(t *testing.T) {
			var m map[string]any
			json.Unmarshal([]byte(golden), &m)
			set(m)
			err := decodeBody(m)
			var e *Error
			if !errors.As(err, &e) || e.Code != "NOT_SUPPORTED" || e.Property != property || !strings.Contains(e.Message, property) {
				t.Errorf("%s set: got %v, want NOT_SUPPORTED naming %s", field, err, property)
			}
		})
	}
	// The SDK leaves out only these (omitempty) fields when they are empty.
	omitted := map[string]bool{"host_filter_tag": true, "aws_role_filter_name": true, "oci_compartment_filter": true}
	rt := reflect.TypeOf(privxSourceConnection{})
	conn := base["connection"].(map[string]any)
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		cur, sent := conn[name]
		if !sent && !omitted[name] {
			t.Errorf("connection.%s is not in the SDK's body: a field that is not PrivX's", name)
		}
		check(name, "connection."+name, func(m map[string]any) { m["connection"].(map[string]any)[name] = nonZero(cur) })
	}
	check("region_filter", "region_filter", func(m map[string]any) { m["region_filter"] = []any{"eu-north-1"} })
	// A typo is still refused, as an unknown field rather than a PrivX one.
	var m map[string]any
	json.Unmarshal([]byte(golden), &m)
	m["connection"].(map[string]any)["ldap_base_dm"] = "dc=x"
	if err := decodeBody(m); err == nil || strings.Contains(err.Error(), "NOT_SUPPORTED") {
		t.Errorf("a typo in a connection field: got %v, want an unknown-field error", err)
	}
}

// TestSourceAliasOnUpdate pins how the two spellings of a renamed field are read back on update: an answer carries
// both, so the one that differs from the stored value is the change (the CLI's read-modify-write of ldap_base sends
// the stored ldap_base_dn back); two different changes at once are refused.
func TestSourceAliasOnUpdate(t *testing.T) {
	stored := &directory.Source{}
	stored.Connection = directory.Connection{Type: "LDAP", LDAPBase: "dc=old"}
	cases := []struct {
		name        string
		own, privx  string
		stored      *directory.Source
		want        string
		wantRefusal bool
	}{
		{name: "create, both alike", own: "dc=a", privx: "dc=a", want: "dc=a"},
		{name: "create, only privx", privx: "dc=a", want: "dc=a"},
		{name: "create, both differ", own: "dc=a", privx: "dc=b", wantRefusal: true},
		{name: "update, own changed", own: "dc=new", privx: "dc=old", stored: stored, want: "dc=new"},
		{name: "update, privx changed", own: "dc=old", privx: "dc=new", stored: stored, want: "dc=new"},
		{name: "update, both changed differently", own: "dc=x", privx: "dc=y", stored: stored, wantRefusal: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := map[string]any{"type": "LDAP"}
			if c.own != "" {
				conn["ldap_base"] = c.own
			}
			if c.privx != "" {
				conn["ldap_base_dn"] = c.privx
			}
			b, _ := json.Marshal(map[string]any{"name": "s", "connection": conn})
			r := httptest.NewRequest("PUT", "/role-store/api/v1/sources/x", strings.NewReader(string(b)))
			r.Header.Set("Content-Type", "application/json")
			src, err := decodeSource(r, c.stored)
			if c.wantRefusal {
				var e *Error
				if !errors.As(err, &e) || e.Property != "connection.ldap_base_dn" {
					t.Fatalf("got %v, want a refusal naming connection.ldap_base_dn", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if src.Connection.LDAPBase != c.want {
				t.Errorf("ldap_base %q, want %q", src.Connection.LDAPBase, c.want)
			}
		})
	}
}
