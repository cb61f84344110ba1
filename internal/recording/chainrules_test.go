package recording

import (
	"context"
	"crypto/sha256"
	"os"
	"strings"
	"testing"
)

// forge writes a trail of records as someone holding the signing key would: every line carries a valid MAC over
// what it says, so only the chain rules (prev, numbering, open first, nothing after the end) can refuse it. Each
// record's prev is the MAC of the line before unless prevOf names another line (1-based; 0 keeps the chain).
func forge(t *testing.T, dir, id string, recs []record, prevOf map[int]int) {
	t.Helper()
	var trail []byte
	var macs [][sha256.Size]byte
	var prev [sha256.Size]byte
	for i := range recs {
		if j, ok := prevOf[i+1]; ok {
			prev = [sha256.Size]byte{}
			if j > 0 {
				prev = macs[j-1]
			}
		}
		line, mac, err := encodeLine(testKey, prev, &recs[i])
		if err != nil {
			t.Fatal(err)
		}
		trail = append(trail, line...)
		macs = append(macs, mac)
		prev = mac
	}
	if err := os.WriteFile(trailPath(dir, id), trail, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyChainRules pins each rule of the chain on its own. The MAC alone would not catch any of these: every
// line is authentic, and the trail is still not what was recorded (a line dropped and the rest renumbered, lines
// of two sessions spliced, records added after the close).
func TestVerifyChainRules(t *testing.T) {
	open := func(n int64, id string) record {
		return record{N: n, Kind: KindOpen, Time: t0, Open: &SessionMeta{SessionID: id, User: "alice", Target: "api", Started: t0}}
	}
	ex := func(n int64) record {
		return record{N: n, Kind: KindExchange, Time: t0, Exchange: testExchange(int(n))}
	}
	cls := func(n int64) record {
		return record{N: n, Kind: KindClose, Time: t0, Close: &CloseInfo{Reason: "idle", Exchanges: n - 2}}
	}
	for _, tc := range []struct {
		name    string
		recs    []record
		prevOf  map[int]int
		badLine int
		problem string
	}{
		{"whole", []record{open(1, "s"), ex(2), ex(3), cls(4)}, nil, 0, ""},
		{"prev names the line before the one before", []record{open(1, "s"), ex(2), ex(3), cls(4)}, map[int]int{3: 1}, 3, "prev does not match"},
		{"numbering skips", []record{open(1, "s"), ex(2), ex(4), cls(5)}, nil, 3, "record number 4, want 3"},
		{"numbering repeats", []record{open(1, "s"), ex(2), ex(2), cls(3)}, nil, 3, "record number 2, want 3"},
		{"a record after the close", []record{open(1, "s"), ex(2), cls(3), ex(4)}, nil, 4, "record after the end"},
		{"starts with an exchange", []record{ex(1), ex(2), cls(3)}, nil, 1, "does not start with an open record"},
		{"a second open", []record{open(1, "s"), ex(2), open(3, "s"), cls(4)}, nil, 3, "second open record"},
		{"opens another session", []record{open(1, "other"), ex(2), cls(3)}, nil, 1, `open record names session "other"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := newTestStore(t, dir)
			forge(t, dir, "s", tc.recs, tc.prevOf)
			rep, err := s.Verify(context.Background(), "s")
			if err != nil {
				t.Fatal(err)
			}
			if tc.badLine == 0 {
				if !rep.OK || !rep.Closed || rep.Records != int64(len(tc.recs)) {
					t.Fatalf("a whole forged-format trail: %+v; the forger is wrong, not the verifier", rep)
				}
				return
			}
			if rep.OK || rep.FirstBadLine != tc.badLine || !strings.Contains(rep.Problem, tc.problem) {
				t.Fatalf("Verify = ok %v, first bad line %d (%q); want line %d: %q", rep.OK, rep.FirstBadLine, rep.Problem, tc.badLine, tc.problem)
			}
		})
	}
}

// TestCheckSeal: a closed trail is whole only if its record count, its last MAC and its close all match the seal
// stored at close; each alone is not enough.
func TestCheckSeal(t *testing.T) {
	seal := Seal{Head: "ab12", Records: 5}
	for _, tc := range []struct {
		name string
		rep  VerifyReport
		want bool
	}{
		{"matches", VerifyReport{OK: true, Closed: true, Records: 5, Head: "ab12"}, true},
		{"fewer records", VerifyReport{OK: true, Closed: true, Records: 4, Head: "ab12"}, false},
		{"another head", VerifyReport{OK: true, Closed: true, Records: 5, Head: "cd34"}, false},
		{"not closed", VerifyReport{OK: true, Records: 5, Head: "ab12"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := CheckSeal(tc.rep, seal)
			if !c.Sealed || c.Matches != tc.want || (c.Problem == "") != tc.want {
				t.Fatalf("CheckSeal = %+v, want matches %v with a problem exactly when it does not", c, tc.want)
			}
		})
	}
	if c := CheckSeal(VerifyReport{OK: true, Closed: true, Records: 5, Head: "ab12"}, Seal{}); c.Sealed || c.Matches {
		t.Errorf("CheckSeal without a stored seal = %+v, want neither sealed nor matching", c)
	}
}
