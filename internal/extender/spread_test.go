package extender_test

import (
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/testbinary"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestLoadSpreadsAcrossExtenders: two extenders of one prefix run in two namespaces, each next to its own copy
// of the origin on the same address, so the origin that answers tells which extender carried the request. The
// origins close every connection, so each request is a new dial. N requests spread over both; with one killed,
// all of them go to the other.
func TestLoadSpreadsAcrossExtenders(t *testing.T) {
	const n = 20
	ns1, ns2 := newNetns(t), newNetns(t)
	o1 := startPrivateOriginAt(t, ns1, "127.0.0.1:0", true, privateHost)
	o2 := startPrivateOriginAt(t, ns2, o1.addr, true, privateHost) // the same address, in the other segment
	bin := testbinary.Build(t)
	ns2.routeTo(t, ns1.hostIP) // both agents dial the one API address
	gh := testserver.Start(t, testserver.Options{Configure: func(c *config.Config) { c.APIListen = ns1.hostIP + ":0" }})
	adm := gh.AdminToken()
	caFile := writeFile(t, "gateway-ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: gh.Server.CA().Root().Raw})))

	var e1, e2 extenderView
	gh.JSON("POST", proxyAPI+"/extenders", adm, map[string]any{"name": "site-e-1", "routing_prefix": "site-e"}, http.StatusCreated, &e1)
	gh.JSON("POST", proxyAPI+"/extenders", adm, map[string]any{"name": "site-e-2", "routing_prefix": "site-e"}, http.StatusCreated, &e2)
	both := &privateOrigin{addr: o1.addr, caPEM: o1.caPEM + o2.caPEM}
	client, secret := privateAccess(t, gh, adm, both, "site-e", gh.Server.ProxyAddr())
	connected := func(id string, want bool) {
		t.Helper()
		var v extenderView
		for range 300 {
			gh.JSON("GET", proxyAPI+"/extenders/"+id, adm, nil, http.StatusOK, &v)
			if v.Status.Connected == want {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("extender %s: connected never became %v", id, want)
	}
	a1 := startAgent(t, bin, ns1, "https://"+gh.Server.APIAddr(), caFile, e1.Token)
	startAgent(t, bin, ns2, "https://"+gh.Server.APIAddr(), caFile, e2.Token)
	connected(e1.ID, true)
	connected(e2.ID, true)
	run := func() (int64, int64) {
		t.Helper()
		h1, h2 := o1.hits.Load(), o2.hits.Load()
		for i := range n {
			if status, body := get(t, client, "https://"+privateHost+"/v1/items", secret); status != http.StatusOK || !strings.Contains(body, `"private":true`) {
				t.Fatalf("request %d: %d %s", i, status, body)
			}
		}
		return o1.hits.Load() - h1, o2.hits.Load() - h2
	}

	t.Run("requests spread across both extenders", func(t *testing.T) {
		d1, d2 := run()
		t.Logf("%d requests: %d through site-e-1, %d through site-e-2", n, d1, d2)
		if d1+d2 != n || d1 < n/4 || d2 < n/4 {
			t.Fatalf("%d and %d of %d requests: each extender should carry a share", d1, d2, n)
		}
	})
	t.Run("with one extender killed all traffic moves to the other", func(t *testing.T) {
		a1.kill()
		connected(e1.ID, false)
		d1, d2 := run()
		if d1 != 0 || d2 != n {
			t.Fatalf("after killing site-e-1: %d through it, %d through site-e-2, want 0 and %d", d1, d2, n)
		}
	})
}
