package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCell(t *testing.T) {
	tests := []struct {
		name string
		json string
		path string
		want string
	}{
		{"string", `{"a":"x"}`, "a", "x"},
		{"missing", `{"a":"x"}`, "b", ""},
		{"bool", `{"a":true}`, "a", "yes"},
		{"time", `{"a":"2026-01-02T03:04:05.123456Z"}`, "a", "2026-01-02 03:04:05Z"},
		{"strings", `{"a":["x","y"]}`, "a", "x,y"},
		{"refs by name", `{"roles":[{"id":"1","name":"ops"},{"id":"2","name":"dev"}]}`, "roles", "ops,dev"},
		{"ref by id", `{"target":{"id":"7"}}`, "target", "7"},
		{"through array", `{"eps":[{"host":"a"},{"host":"b:1"}]}`, "eps.host", "a,b:1"},
		{"nested", `{"c":{"type":"token"}}`, "c.type", "token"},
		{"number", `{"n":3}`, "n", "3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(tc.json), &v); err != nil {
				t.Fatal(err)
			}
			if got := cell(lookup(v, tc.path)); got != tc.want {
				t.Errorf("cell(%s, %s) = %q, want %q", tc.json, tc.path, got, tc.want)
			}
		})
	}
}

func TestPrintListAligns(t *testing.T) {
	items := []json.RawMessage{[]byte(`{"id":"1","name":"a-long-name"}`), []byte(`{"id":"22","name":"b"}`)}
	var buf bytes.Buffer
	if err := printList(&buf, outputFlags{Output: "table"}, items, []column{{"ID", "id"}, {"NAME", "name"}}); err != nil {
		t.Fatal(err)
	}
	want := "ID  NAME\n1   a-long-name\n22  b\n"
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	buf.Reset()
	if err := printList(&buf, outputFlags{Output: "json"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("{\n  \"count\": 0,\n  \"items\": []\n}\n", buf.String()); diff != "" {
		t.Errorf("empty json list (-want +got):\n%s", diff)
	}
}

func TestPrintObjectKeepsOrder(t *testing.T) {
	var buf bytes.Buffer
	raw := json.RawMessage(`{"zeta":"1","alpha":["x","y"],"pem":"-----BEGIN-----\nabc\n-----END-----\n","empty":""}`)
	if err := printObject(&buf, outputFlags{Output: "table"}, raw); err != nil {
		t.Fatal(err)
	}
	want := "ZETA:   1\nALPHA:  x,y\nPEM:\n-----BEGIN-----\nabc\n-----END-----\nEMPTY:  -\n"
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("object (-want +got):\n%s", diff)
	}
}

func TestReadBodyFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, want string
		wantErr             bool
	}{
		{"json", `{"name":"a","n":1}`, `{"name":"a","n":1}`, false},
		{"yaml", "name: a\nroles:\n  - id: r1\n", `{"name":"a","roles":[{"id":"r1"}]}`, false},
		{"empty", "", "", true},
		{"garbage", "{not: [json", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			os.WriteFile(p, []byte(tc.content), 0o600)
			got, err := readBodyFile(p, nil)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && string(got) != tc.want {
				t.Errorf("body = %s, want %s", got, tc.want)
			}
		})
	}
	merged, err := mergeBody(json.RawMessage(`{"name":"file","comment":"c"}`), map[string]any{"name": "flag"})
	if err != nil || string(merged) != `{"comment":"c","name":"flag"}` {
		t.Errorf("mergeBody = %s, %v", merged, err)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"plain": "'plain'", "it's": `'it'\''s'`, "$HOME `x`": "'$HOME `x`'", "": "''"} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestNormalizeServer(t *testing.T) {
	tests := []struct{ in, want string }{
		{"gh.example.com:8443", "https://gh.example.com:8443"},
		{"https://gh.example.com:8443/", "https://gh.example.com:8443"},
		{"https://gh.example.com/prefix/", "https://gh.example.com/prefix"},
		{"http://gh.example.com", ""},
		{"https://", ""},
	}
	for _, tc := range tests {
		got, err := normalizeServer(tc.in)
		if (tc.want == "") != (err != nil) || got != tc.want {
			t.Errorf("normalizeServer(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestAPIErrorMessage(t *testing.T) {
	tests := []struct {
		status int
		body   string
		want   string
	}{
		{400, `{"error_code":"BAD_REQUEST","error_message":"name is required","property":"name"}`, "name is required (property: name) [BAD_REQUEST 400]"},
		{404, `{"error_code":"NOT_FOUND","error_message":"user not found"}`, "user not found [NOT_FOUND 404]"},
		{502, "bad gateway from the load balancer\n", "bad gateway from the load balancer [HTTP 502]"},
		{500, "", "Internal Server Error [HTTP 500]"},
	}
	for _, tc := range tests {
		if got := decodeAPIError(tc.status, []byte(tc.body)).Error(); got != tc.want {
			t.Errorf("decodeAPIError(%d, %q) = %q, want %q", tc.status, tc.body, got, tc.want)
		}
	}
}
