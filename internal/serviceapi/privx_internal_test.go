package serviceapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/model"
)

func TestRefuseUnsupported(t *testing.T) {
	type in struct {
		Kept     json.RawMessage `json:"kept" readonly:"true"`
		Group    json.RawMessage `json:"access_group_id" why:"no access groups"`
		Disabled json.RawMessage `json:"disabled" zero:"\"NOT_DISABLED\""`
		hidden   json.RawMessage
	}
	for _, c := range []struct {
		body, refused string
	}{
		{`{}`, ""},
		{`{"kept":"anything","access_group_id":"","disabled":"NOT_DISABLED"}`, ""},
		{`{"access_group_id":null,"disabled":false}`, ""},
		{`{"access_group_id":{"a":[],"b":"","c":0,"d":{"e":false}}}`, ""},
		{`{"access_group_id":"g1"}`, "access_group_id"},
		{`{"access_group_id":{"a":[1]}}`, "access_group_id"},
		{`{"disabled":"BY_ADMIN"}`, "disabled"},
		{`{"disabled":true}`, "disabled"},
	} {
		var v in
		if err := json.Unmarshal([]byte(c.body), &v); err != nil {
			t.Fatal(err)
		}
		v.hidden = json.RawMessage(`"set"`) // unexported fields are never the client's: refuseUnsupported skips them
		err := refuseUnsupported(&v)
		var e *Error
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("%s: refused: %v", c.body, err)
		case c.refused != "" && (!errors.As(err, &e) || e.Code != "NOT_SUPPORTED" || e.Property != c.refused):
			t.Errorf("%s: got %v, want NOT_SUPPORTED naming %s", c.body, err, c.refused)
		}
	}
}

func TestSourceRulesBothSpellings(t *testing.T) {
	for _, c := range []struct {
		body string
		want []sourceRule
		code string
	}{
		{`[{"tag":"devs"}]`, []sourceRule{{Tag: "devs"}}, ""},
		{`{"type":"OR","rules":[{"type":"GROUP","source":"s1","search_string":"cn=ops,dc=x"},{"type":"TAG","search_string":"devs"}]}`,
			[]sourceRule{{Source: &model.Ref{ID: "s1"}, GroupDN: "cn=ops,dc=x"}, {Tag: "devs"}}, ""},
		{`{"rules":null}`, []sourceRule{}, ""},
		{`{"type":"TAG","search_string":"devs"}`, []sourceRule{{Tag: "devs"}}, ""},
		{`{"type":"AND","rules":[]}`, nil, "NOT_SUPPORTED"},
		{`{"type":"OR","rules":[{"type":"OR","rules":[]}]}`, nil, "NOT_SUPPORTED"},
		{`{"type":"OR","rules":[{"type":"GROUP","match":"CONTAINS","search_string":"x"}]}`, nil, "NOT_SUPPORTED"},
		{`{"type":"OR","rules":[{"type":"USER"}]}`, nil, "BAD_REQUEST"},
		{`{"type":"OR","typo":1}`, nil, "BAD_REQUEST"},
	} {
		var s sourceRules
		err := json.Unmarshal([]byte(c.body), &s)
		var e *Error
		if c.code != "" {
			if !errors.As(err, &e) || e.Code != c.code {
				t.Errorf("%s: got %v, want %s", c.body, err, c.code)
			}
			continue
		}
		if err != nil || !s.set || !reflect.DeepEqual(s.rules, c.want) {
			t.Errorf("%s: got %+v (set %v), %v; want %+v", c.body, s.rules, s.set, err, c.want)
		}
	}
}

func TestDisabledFlag(t *testing.T) {
	for _, c := range []struct {
		body       string
		set, value bool
		code       string
	}{
		{`true`, true, true, ""}, {`false`, true, false, ""}, {`""`, false, false, ""},
		{`"NOT_DISABLED"`, true, false, ""}, {`"BY_ADMIN"`, true, true, ""},
		{`"BY_LICENSE"`, false, false, "NOT_SUPPORTED"}, {`"yes"`, false, false, "BAD_REQUEST"}, {`1`, false, false, "BAD_REQUEST"},
	} {
		var d disabledFlag
		err := json.Unmarshal([]byte(c.body), &d)
		var e *Error
		if c.code != "" {
			if !errors.As(err, &e) || e.Code != c.code || e.Property != "disabled" {
				t.Errorf("%s: got %v, want %s naming disabled", c.body, err, c.code)
			}
			continue
		}
		if err != nil || d.set != c.set || d.value != c.value {
			t.Errorf("%s: got %+v, %v", c.body, d, err)
		}
	}
}

// FuzzPrivXParsers feeds arbitrary JSON to the PrivX-spelling readers: they never panic, zeroJSON only calls
// valid JSON zero, and a rule tree that reads survives being answered and read again unchanged.
func FuzzPrivXParsers(f *testing.F) {
	for _, s := range []string{`[{"tag":"a"}]`, `{"type":"OR","rules":[{"type":"GROUP","source":"s","search_string":"cn=a"}]}`,
		`{"rules":null}`, `"BY_ADMIN"`, `true`, `{"password":"x"}`, `["u1","u2"]`, `"u1"`, `{"a":{"b":[]}}`, `0`, `null`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Blank input is an absent field; anything else called zero must be valid JSON.
		if zeroJSON(b) && len(bytes.TrimSpace(b)) > 0 && !json.Valid(b) {
			t.Fatalf("zeroJSON(%q) for invalid JSON", b)
		}
		var d disabledFlag
		_ = json.Unmarshal(b, &d)
		var p passwordField
		_ = json.Unmarshal(b, &p)
		var l idList
		_ = json.Unmarshal(b, &l)
		var s sourceRules
		// Rules ruleInputs would refuse (neither or both of group_dn and tag) are never stored or answered.
		if json.Unmarshal(b, &s) == nil && s.set && !slices.ContainsFunc(s.rules, func(r sourceRule) bool { return (r.GroupDN == "") == (r.Tag == "") }) {
			tree := ruleTree{Type: "OR", Rules: []ruleTree{}}
			for _, r := range s.rules {
				tree.Rules = append(tree.Rules, r.tree())
			}
			again, err := tree.flatten()
			if err != nil || !reflect.DeepEqual(again, s.rules) {
				t.Fatalf("%q: rules %+v answer as %+v, which read back as %+v (%v)", b, s.rules, tree, again, err)
			}
		}
	})
}

// TestPageList pins the paging of lists built in memory: count before offset and limit, filter on the name,
// sortdir on the name, and the refusal of another sortkey.
func TestPageList(t *testing.T) {
	names := []string{"bravo", "alpha", "charlie", "alpha-2"}
	for _, c := range []struct {
		query string
		count int
		want  []string
		bad   string
	}{
		{"", 4, []string{"bravo", "alpha", "charlie", "alpha-2"}, ""},
		{"?limit=2", 4, []string{"bravo", "alpha"}, ""},
		{"?offset=3&limit=2", 4, []string{"alpha-2"}, ""},
		{"?offset=9", 4, []string{}, ""},
		{"?sortkey=name&sortdir=desc&limit=2", 4, []string{"charlie", "bravo"}, ""},
		{"?sortdir=asc", 4, []string{"alpha", "alpha-2", "bravo", "charlie"}, ""},
		{"?filter=ALPHA", 2, []string{"alpha", "alpha-2"}, ""},
		{"?sortkey=created", 0, nil, "sortkey"},
		{"?limit=-1", 0, nil, "limit"},
	} {
		r := httptest.NewRequest("GET", "/x"+c.query, nil)
		got, err := pageList(r, names, func(s string) string { return s })
		var e *Error
		if c.bad != "" {
			if !errors.As(err, &e) || e.Property != c.bad {
				t.Errorf("%s: got %v, want an error naming %s", c.query, err, c.bad)
			}
			continue
		}
		if err != nil || got.Count != c.count || !slices.Equal(got.Items, c.want) {
			t.Errorf("%s: got %+v, %v; want count %d items %v", c.query, got, err, c.count, c.want)
		}
	}
}
