package serviceapi

import (
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
)

// TestTrailLogHandleAdmits pins what a download handle is bound to: one connection, one channel, one principal
// (kind and id), and a deadline.
func TestTrailLogHandleAdmits(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	h := trailLogHandle{Connection: "c1", Channel: 2, Kind: auth.KindUser, Principal: "u1", Expires: now.Add(trailLogTTL).Unix()}
	admin := &Principal{Kind: auth.KindUser, ID: "u1"}
	for _, c := range []struct {
		name string
		id   string
		n    int64
		p    *Principal
		at   time.Time
		want bool
	}{
		{"the holder, in time", "c1", 2, admin, now, true},
		{"at the deadline", "c1", 2, admin, now.Add(trailLogTTL), true},
		{"after the deadline", "c1", 2, admin, now.Add(trailLogTTL + time.Second), false},
		{"another connection", "c2", 2, admin, now, false},
		{"another channel", "c1", 3, admin, now, false},
		{"another user", "c1", 2, &Principal{Kind: auth.KindUser, ID: "u2"}, now, false},
		{"an API client with the user's id", "c1", 2, &Principal{Kind: auth.KindAPIClient, ID: "u1"}, now, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := h.admits(c.id, c.n, c.p, c.at); got != c.want {
				t.Errorf("admits = %v, want %v", got, c.want)
			}
		})
	}
}

func TestChannelNumber(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "42": 42, "0": 0, "-1": 0, "x": 0, "": 0, "1.5": 0} {
		got, err := channelNumber(in)
		if got != want || (err == nil) != (want > 0) {
			t.Errorf("channelNumber(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}
