package store

import (
	"slices"
	"strings"
	"testing"
)

func TestTermsAreDistinctFoldedTrigrams(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"", nil},
		{"ab", nil},
		{"AbcABC", []string{"r616263", "r626361", "r636162"}}, // abc, bca, cab: "ABC" is abc again
		{"ÄÖüx", []string{"rc384c396c3bc", "rc396c3bc78"}},    // non-ASCII letters are not folded
		{"aaaa", []string{"r616161"}},
	} {
		ts := termSets.Get().(*termSet)
		got := strings.Fields(string(ts.appendTerms(nil, termResponse, tc.text)))
		termSets.Put(ts)
		if !slices.Equal(got, tc.want) {
			t.Errorf("terms of %q = %v, want %v", tc.text, got, tc.want)
		}
	}
	// The set is reset between texts: the same text gives the same words again.
	if a, b := needleTerms(termRequest, "hello"), needleTerms(termRequest, "hello"); !slices.Equal(a, b) || len(a) != 3 {
		t.Errorf("needle terms %v then %v", a, b)
	}
	if n := len(needleTerms(termRequest, "the quick brown fox jumps over the lazy dog")); n != maxNeedleTerms {
		t.Errorf("a long needle asks for %d terms, want %d", n, maxNeedleTerms)
	}
}

func BenchmarkEntryTerms(b *testing.B) {
	var sb strings.Builder
	for i := 0; sb.Len() < 64<<10; i++ {
		sb.WriteString(`{"id":` + strings.Repeat("7", i%9+1) + `,"name":"widget","owner":{"team":"platform"}},`)
	}
	e := &TrailEntry{Method: "GET", Host: "api.example", Path: "/items", ResponseText: sb.String()}
	texts := [3]string{indexText(e.RequestLine()), "", indexText(e.ResponseText)}
	b.ReportAllocs()
	for b.Loop() {
		blockTerms([][3]string{texts})
	}
}
