package store_test

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// BenchmarkIndexExchanges is the trail index's cost per exchange on SQLite, as the index worker pays it under a
// steady load: batches of small JSON exchanges written one after another into a growing index, so the text
// index's segment merges are counted too. ns/op is per exchange. "api" is one API's answers that differ in an id
// (the bench's small GET); "varied" gives each exchange its own path, a random uid, a timestamp and other words,
// so that rows recorded together share fewer trigrams; "64kib-letters" is what the trail keeps of the bench's 1 MiB
// responses, "64kib-json" a list of such varied objects.
func BenchmarkIndexExchanges(b *testing.B) {
	words := strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu")
	w := func() string { return words[mrand.IntN(len(words))] }
	varied := func(seq int64) (string, string) {
		uid := make([]byte, 16)
		rand.Read(uid)
		return fmt.Sprintf("/api/v1/namespaces/%s/pods/%s-%x", w(), w(), uid[:3]),
			fmt.Sprintf(`{"kind":"Pod","metadata":{"name":"%s-%s-%x","uid":"%x","resourceVersion":"%d","creationTimestamp":"%s"},"spec":{"nodeName":"%s-%d","image":"%s:%d.%d"}}`,
				w(), w(), uid[:3], uid, seq*7919, time.Unix(1764547200+seq*13, 0).UTC().Format(time.RFC3339), w(), mrand.IntN(100), w(), mrand.IntN(9), mrand.IntN(30))
	}
	// What the trail keeps of the bench's 1 MiB responses (the default body limit), and so what the index holds.
	blob := strings.Repeat("abcdefghijklmnopqrstuvwxyz", 64<<10/26+1)[:64<<10]
	shapes := []struct {
		name string
		body func(seq int64) (path, text string)
	}{
		{"api", func(seq int64) (string, string) {
			return "/small", fmt.Sprintf(`{"id":%d,"name":"widget","tags":["a","b","c"],"owner":{"team":"platform","contact":"ops@example.com"},"enabled":true}`, seq)
		}},
		{"varied", varied},
		{"64kib-letters", func(seq int64) (string, string) {
			return "/blob", fmt.Sprintf("%08d", seq) + blob[8:]
		}},
		{"64kib-json", func(seq int64) (string, string) {
			var b strings.Builder
			for i := int64(0); b.Len() < 64<<10; i++ {
				_, pod := varied(seq*1000 + i)
				b.WriteString(pod)
				b.WriteByte(',')
			}
			return "/api/v1/pods", b.String()[:64<<10]
		}},
	}
	for _, shape := range shapes {
		for _, batch := range []int{64, 256, 1024} {
			if strings.HasPrefix(shape.name, "64kib") && batch > 64 {
				continue // bounded by the indexer's queue bytes in practice: a batch of these is 4 MiB already
			}
			b.Run(fmt.Sprintf("%s/batch-%d", shape.name, batch), func(b *testing.B) { benchIndex(b, batch, shape.body) })
		}
	}
}

func benchIndex(b *testing.B, batch int, body func(seq int64) (path, text string)) {
	s := benchStore(b)
	started := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	entries := make([]store.TrailEntry, batch)
	seq := int64(0)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		b.StopTimer()
		for i := range entries {
			seq++
			path, text := body(seq)
			entries[i] = store.TrailEntry{SessionID: fmt.Sprintf("sess-%d", seq%4), Seq: seq, RequestID: fmt.Sprintf("req-%d", seq),
				Started: started.Add(time.Duration(seq) * time.Millisecond), DurationMS: 0.4, UserID: "u1", UserName: "alice",
				TargetID: "t1", TargetName: "origin", ClientAddress: "127.0.0.1", Method: "GET", Scheme: "https",
				Host: "127.0.0.1:8443", Path: path, Status: 200, Decision: "allowed", Proto: "HTTP/1.1", ResponseText: text}
		}
		b.StartTimer()
		if err := s.IndexExchanges(context.Background(), entries); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSearchLongBodies is a text search that checks every one of 1,000 exchanges with 64 KiB JSON bodies: the
// cost of reading long stored texts back (SQLite keeps them compressed) against a needle in all of them (the
// count) and in none (the page, empty).
func BenchmarkSearchLongBodies(b *testing.B) {
	s := benchStore(b)
	var body strings.Builder
	for i := 0; body.Len() < 64<<10; i++ {
		fmt.Fprintf(&body, `{"kind":"Pod","metadata":{"name":"web-%d","uid":"%08x","resourceVersion":"%d"}},`, i, i*2654435761, i*7919)
	}
	started := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for batch := range 10 {
		var entries []store.TrailEntry
		for i := range 100 {
			seq := int64(batch*100 + i + 1)
			entries = append(entries, store.TrailEntry{SessionID: "s", Seq: seq, Started: started.Add(time.Duration(seq) * time.Second),
				Method: "GET", Host: "k8s", Path: "/api/v1/pods", Status: 200, ResponseText: fmt.Sprintf("%08d", seq) + body.String()[8:]})
		}
		if err := s.IndexExchanges(context.Background(), entries); err != nil {
			b.Fatal(err)
		}
	}
	for _, needle := range []string{`"RESOURCEVERSION"`, `"no-such-key"`} {
		b.Run(strings.Trim(needle, `"`), func(b *testing.B) {
			for b.Loop() {
				if _, _, _, err := s.SearchTrails(context.Background(), store.TrailQuery{ResponseText: needle, Limit: 50}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchStore is a new SQLite store in b's temp dir.
func benchStore(b *testing.B) *store.Store {
	keys, err := secrets.NewKeyring(make([]byte, secrets.MasterKeySize))
	if err != nil {
		b.Fatal(err)
	}
	s, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "gatehouse.db"), keys, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}
