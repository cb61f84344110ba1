package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPackText(t *testing.T) {
	long := strings.Repeat(`{"kind":"Pod","metadata":{"name":"web-7d4b9c"}},`, 100)
	for _, tc := range []struct {
		name, text string
		packed     bool
	}{
		{"short", "short text", false},
		{"long", long, true},
		{"incompressible", randomText(4096), false},
		{"empty", "", false},
	} {
		v := packText(tc.text)
		if _, isBlob := v.([]byte); isBlob != tc.packed {
			t.Errorf("%s: packed %v, want %v", tc.name, isBlob, tc.packed)
		}
		got, err := unpackText(v)
		if err != nil || got != tc.text {
			t.Errorf("%s: unpacked %.40q, %v", tc.name, got, err)
		}
	}
	if _, err := unpackText([]byte{9, 1, 2}); err == nil {
		t.Error("a BLOB of an unknown format was read")
	}
}

// randomText is n bytes of printable ASCII that does not compress.
func randomText(n int) string {
	var b strings.Builder
	x := uint32(2463534242)
	for b.Len() < n {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b.WriteByte(byte(' ' + x%95))
	}
	return b.String()
}

// FuzzTextContainsIsLike holds gatehouse_text_contains over a packed text to what the search asks of an unpacked
// one, SQLite's LIKE '%needle%' with the store's escaping: the two must never disagree.
func FuzzTextContainsIsLike(f *testing.F) {
	long := strings.Repeat(`{"Name":"Web-Frontend","pct":"100%_done","path":"C:\\tmp"} `, 40)
	for _, s := range [][2]string{{long, "web-frontend"}, {long, "WEB"}, {long, "100%_d"}, {long, "100x_d"}, {long, `C:\tmp`},
		{long, "zzz"}, {long + "Äpfel", "äpfel"}, {long + "Äpfel", "Äpfel"}, {"short hay", "HAY"}, {long, `%`}, {long, `_`}} {
		f.Add(s[0], s[1])
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(f.TempDir(), "x.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	f.Fuzz(func(t *testing.T, hay, needle string) {
		hay, needle = indexText(hay), indexText(needle)
		if needle == "" || !utf8.ValidString(needle) {
			return
		}
		var got, want bool
		if err := db.QueryRowContext(context.Background(), `SELECT gatehouse_text_contains(?, ?), ? LIKE ? ESCAPE '\'`,
			packText(hay), needle, hay, "%"+likeEscape(needle)+"%").Scan(&got, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("hay %.80q needle %q: contains %v, LIKE %v", hay, needle, got, want)
		}
	})
}

func TestFoldBytes(t *testing.T) {
	var all []byte
	for c := range 256 {
		all = append(all, byte(c))
	}
	for _, b := range [][]byte{all, []byte("Hello, WORLD! Zz@[`{ ÄÖÜ"), []byte("AZ"), nil} {
		got := append([]byte(nil), b...)
		foldBytes(got)
		for i, c := range b {
			if got[i] != foldASCII(c) {
				t.Errorf("byte %#x folded to %#x, want %#x", c, got[i], foldASCII(c))
			}
		}
	}
}
