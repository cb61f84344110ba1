package serviceapi

import (
	"bytes"
	"encoding/json"

	"github.com/gatehouse-dev/gatehouse/internal/model"
)

// PrivX writes a role's membership rules as a tree: {"type":"OR","rules":[{"type":"GROUP","source":ID,
// "search_string":DN},...]}. Gatehouse's rules are a flat OR of group and tag rules, so it reads a tree of one OR
// level (or a single leaf) and answers with the same tree; deeper nesting and AND are refused rather than
// flattened into something else.

// ruleTree is one node of PrivX's rule tree.
type ruleTree struct {
	Type         string     `json:"type,omitempty"`
	Source       string     `json:"source,omitempty"`
	SearchString string     `json:"search_string,omitempty"`
	Match        string     `json:"match,omitempty"`
	Rules        []ruleTree `json:"rules"`
}

// sourceRules is a role's rules as sent: set says the field was present.
type sourceRules struct {
	set   bool
	rules []sourceRule
}

func (s *sourceRules) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] == '[' {
		var list []sourceRule
		if err := strictUnmarshal(b, &list); err != nil {
			return err
		}
		*s = sourceRules{set: true, rules: append([]sourceRule{}, list...)}
		return nil
	}
	var tree ruleTree
	if err := strictUnmarshal(b, &tree); err != nil {
		return err
	}
	rules, err := tree.flatten()
	if err != nil {
		return err
	}
	*s = sourceRules{set: true, rules: rules}
	return nil
}

// flatten turns a tree of one OR level, a single leaf or the empty tree into Gatehouse's list.
func (t ruleTree) flatten() ([]sourceRule, error) {
	switch t.Type {
	case "", "OR":
		if t.Type == "" && (t.Source != "" || t.SearchString != "") {
			return nil, badRequest("source_rules.type", "a rule needs a type: OR, GROUP or TAG")
		}
		out := []sourceRule{}
		for i, leaf := range t.Rules {
			if leaf.Type == "OR" || leaf.Type == "AND" || len(leaf.Rules) > 0 {
				return nil, notSupported(fieldIndex("source_rules.rules", i), "rules nest one OR level deep in Gatehouse")
			}
			r, err := leaf.leaf(fieldIndex("source_rules.rules", i))
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		return out, nil
	case "AND":
		return nil, notSupported("source_rules.type", "rules combine with OR only in Gatehouse")
	}
	r, err := t.leaf("source_rules")
	if err != nil {
		return nil, err
	}
	return []sourceRule{r}, nil
}

func (t ruleTree) leaf(field string) (sourceRule, error) {
	if t.Match != "" && t.Match != "EXACT" {
		return sourceRule{}, notSupported(field+".match", "groups and tags match exactly")
	}
	if t.SearchString == "" {
		return sourceRule{}, badRequest(field+".search_string", "a rule needs the group or tag it matches in search_string")
	}
	var r sourceRule
	if t.Source != "" {
		r.Source = &model.Ref{ID: t.Source}
	}
	switch t.Type {
	case "GROUP":
		r.GroupDN = t.SearchString
	case "TAG":
		r.Tag = t.SearchString
	default:
		return r, badRequest(field+".type", "a rule's type must be GROUP or TAG")
	}
	return r, nil
}

// tree is a Gatehouse rule as a leaf of PrivX's tree.
func (r sourceRule) tree() ruleTree {
	t := ruleTree{Type: "TAG", SearchString: r.Tag, Match: "EXACT", Rules: []ruleTree{}}
	if r.GroupDN != "" {
		t.Type, t.SearchString = "GROUP", r.GroupDN
	}
	if r.Source != nil {
		t.Source = r.Source.ID
	}
	return t
}

// strictUnmarshal decodes b refusing unknown fields, as the request decoder does for the body around it.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	return nil
}
