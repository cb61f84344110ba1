package approval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// DecisionInput is the body of a decision in either API dialect: {"decision":"approve"|"reject","comment":"..."}.
// "approved" and "rejected" are accepted too, as the state the decision leads to.
type DecisionInput struct {
	Approve bool
	Comment string
}

// ParseDecision reads a decision body strictly: one JSON object, no unknown fields, a known decision, a valid
// comment. The error names the field at fault.
func ParseDecision(body []byte) (DecisionInput, error) {
	var in struct {
		Decision *string `json:"decision"`
		Comment  string  `json:"comment"`
	}
	if !utf8.Valid(body) {
		return DecisionInput{}, &FieldError{Field: "body", Msg: "must be UTF-8 JSON"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return DecisionInput{}, &FieldError{Field: "body", Msg: fmt.Sprintf("must be a JSON object with decision and comment: %v", err)}
	}
	if dec.More() {
		return DecisionInput{}, &FieldError{Field: "body", Msg: "must hold one JSON object"}
	}
	if in.Decision == nil {
		return DecisionInput{}, &FieldError{Field: "decision", Msg: "is required: approve or reject"}
	}
	var out DecisionInput
	switch *in.Decision {
	case "approve", "approved":
		out.Approve = true
	case "reject", "rejected":
	default:
		return DecisionInput{}, &FieldError{Field: "decision", Msg: fmt.Sprintf("%q: must be approve or reject", *in.Decision)}
	}
	if err := CheckComment(in.Comment); err != nil {
		return DecisionInput{}, err
	}
	out.Comment = in.Comment
	return out, nil
}
