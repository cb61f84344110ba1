package store

import (
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
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

// referenceTerms is the plain statement of what appendTerms computes: for every window of three characters (three
// ASCII bytes, or three characters from a character's first byte), its bytes with ASCII letters folded, once each.
func referenceTerms(text string) map[string]bool {
	out := map[string]bool{}
	for i := 0; i < len(text); i++ {
		if !utf8.RuneStart(text[i]) {
			continue
		}
		end := i
		for range 3 {
			if end >= len(text) {
				return out
			}
			_, size := utf8.DecodeRuneInString(text[end:])
			if text[end] < utf8.RuneSelf {
				size = 1
			}
			end += size
		}
		out["r"+hex.EncodeToString([]byte(strings.Map(func(r rune) rune {
			if 'A' <= r && r <= 'Z' {
				return r + 'a' - 'A'
			}
			return r
		}, text[i:end])))] = true
	}
	return out
}

// FuzzTermsMatchReference holds the rolling ASCII fast path of appendTerms to referenceTerms, across ASCII runs
// broken by characters of every width, invalid bytes and runs of every length.
func FuzzTermsMatchReference(f *testing.F) {
	for _, s := range []string{"", "ab", "abc", "ABCabc", "aé", "aébc", "abécd", "日本語テキスト", "x日y本z", "\xffabc\xfe", "ab\xc3", "AbC\x80dEf", "a b\tc\nd",
		`{"id":42,"name":"Widget-Ä"}`, strings.Repeat("xyZ", 50) + "€" + strings.Repeat("Qrs", 50)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if !utf8.ValidString(text) {
			text = strings.ToValidUTF8(text, "?") // what the store indexes (indexText)
		}
		ts := termSets.Get().(*termSet)
		words := strings.Fields(string(ts.appendTerms(nil, termResponse, text)))
		termSets.Put(ts)
		got := map[string]bool{}
		for _, w := range words {
			if got[w] {
				t.Fatalf("%q: word %s twice", text, w)
			}
			got[w] = true
		}
		if want := referenceTerms(text); !maps.Equal(got, want) {
			t.Fatalf("%q:\n got %v\nwant %v", text, got, want)
		}
	})
}
