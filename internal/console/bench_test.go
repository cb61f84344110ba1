package console_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// BenchmarkConnectionsPage10k renders Monitoring → Connections, first page and a filtered page, with 10,000
// sessions in the store (SQLite), end to end over HTTPS: session check, in-process API search, template.
func BenchmarkConnectionsPage10k(b *testing.B) {
	gh := testserver.Start(b, testserver.Options{})
	st := gh.Server.Store()
	ctx := context.Background()
	t0 := time.Now().Add(-48 * time.Hour)
	statuses := []string{store.SessionConnected, store.SessionDisconnected, store.SessionTerminated}
	for i := 0; i < 10000; i++ {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		s := &store.APISession{ID: fmt.Sprintf("bench-%05d", i), Key: fmt.Sprintf("key-%05d", i), UserID: fmt.Sprintf("u%d", i%50),
			UserName: fmt.Sprintf("user%d", i%50), TargetID: fmt.Sprintf("t%d", i%20), TargetName: fmt.Sprintf("target%d", i%20),
			CredentialID: "c", CredentialName: "cred", ClientAddress: "192.0.2.1", Status: statuses[i%3], Connected: at,
			LastActivity: at.Add(time.Second), Requests: int64(i % 100), BytesIn: 1000, BytesOut: 20000, AuditEnabled: true}
		if s.Status != store.SessionConnected {
			s.Disconnected = at.Add(time.Minute)
		}
		if err := st.InsertSession(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	w := newWeb(b, gh.URL, roots(gh))
	w.signIn("admin", testserver.AdminPassword)
	for _, page := range []string{"/monitor/connections", "/monitor/connections?user=u7&status=TERMINATED&offset=50",
		"/monitor/connections?from=2000-01-01T00:00&keywords=target1"} {
		b.Run(page, func(b *testing.B) {
			for b.Loop() {
				resp, err := w.client.Get(gh.URL + page)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("GET %s = %d", page, resp.StatusCode)
				}
			}
		})
	}
}
