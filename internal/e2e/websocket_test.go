package e2e_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
	"golang.org/x/net/websocket"
)

// TestWebSocketMessagesInTheTrail runs a real WebSocket client (x/net/websocket) through Gatehouse's intercepted
// TLS tunnel to a real WebSocket origin behind an audited target. The trail holds every message with its
// direction, opcode and size, text content redacted like bodies (the user's secret and the target token never
// reach the trail, the HAR export or the index), binary as size only; and the text is searchable.
func TestWebSocketMessagesInTheTrail(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	const wsToken = "ws-upstream-token-4c9e1f"
	echo := websocket.Handler(func(ws *websocket.Conn) {
		for {
			fr, err := ws.NewFrameReader()
			if err != nil {
				return
			}
			b, err := io.ReadAll(fr)
			if err != nil || fr.PayloadType() == websocket.CloseFrame {
				return
			}
			if fr.PayloadType() == websocket.BinaryFrame {
				websocket.Message.Send(ws, b)
			} else {
				// The origin echoes what it got, and its own token: both must be redacted in the trail.
				websocket.Message.Send(ws, "echo "+string(b)+" with "+ws.Request().Header.Get("Authorization"))
			}
		}
	})
	cert := f.ca.leaf(t)
	host := startOriginHandler(t, &cert, echo.ServeHTTP)
	target := f.gh.Create(proxyAPI+"/api-targets", f.adm, map[string]any{
		"name": "ws", "roles": []map[string]string{{"id": f.roleID}}, "tls_trust_anchors": f.ca.pem, "audit_enabled": true,
		"authorized_endpoints": []map[string]any{{"host": host, "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/**"}}},
		"target_credential":    map[string]any{"type": "token", "bearer_token": wsToken},
	})
	c := f.credential(target, "ws", nil)
	tn := mustConnect(t, f, "", host)
	cfg, err := websocket.NewConfig("wss://"+host+"/watch", "https://"+host)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Header = http.Header{"Authorization": {"Bearer " + c.Secret}}
	ws, err := websocket.NewClient(cfg, tn.conn)
	if err != nil {
		t.Fatalf("WebSocket handshake through Gatehouse: %v", err)
	}
	if err := websocket.Message.Send(ws, `{"watch":"pods","token":"`+c.Secret+`"}`); err != nil {
		t.Fatal(err)
	}
	var reply string
	if err := websocket.Message.Receive(ws, &reply); err != nil || !strings.HasPrefix(reply, `echo {"watch":"pods"`) {
		t.Fatalf("reply %q, %v", reply, err)
	}
	if err := websocket.Message.Send(ws, []byte{0, 1, 2, 3, 4, 5, 6}); err != nil {
		t.Fatal(err)
	}
	var bin []byte
	if err := websocket.Message.Receive(ws, &bin); err != nil || len(bin) != 7 {
		t.Fatalf("binary echo %v, %v", bin, err)
	}
	ws.Close()
	id := f.session(c.ID)
	f.gh.JSON("POST", connsAPI+"/terminate/connection/"+id, f.adm, nil, http.StatusOK, nil)

	type wsMessage struct {
		Direction string `json:"direction"`
		Opcode    string `json:"opcode"`
		Size      int64  `json:"size"`
		Text      string `json:"text"`
	}
	var tr struct {
		Items []struct {
			WebSocket  bool        `json:"websocket"`
			Proto      string      `json:"proto"`
			Status     int         `json:"status"`
			WSMessages []wsMessage `json:"ws_messages"`
		} `json:"items"`
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		f.gh.JSON("GET", connsAPI+"/connections/"+id+"/trail", f.adm, nil, http.StatusOK, &tr)
		if len(tr.Items) > 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(tr.Items) != 1 || !tr.Items[0].WebSocket || tr.Items[0].Status != 101 || tr.Items[0].Proto != "HTTP/1.1" {
		t.Fatalf("trail: %+v", tr.Items)
	}
	var data []wsMessage
	for _, m := range tr.Items[0].WSMessages {
		if m.Opcode != "close" {
			data = append(data, m)
		}
	}
	if len(data) != 4 {
		t.Fatalf("messages: %+v, want text and binary each way", data)
	}
	want := []struct{ dir, op, text string }{
		{"to_target", "text", `{"watch":"pods","token":"[REDACTED]"}`},
		// The user's secret is redacted by the recorder; the target token the origin echoes is masked by the proxy
		// before it leaves for the client, so the trail holds the masked form.
		{"to_client", "text", `echo {"watch":"pods","token":"[REDACTED]"} with Bearer ` + strings.Repeat("*", len(wsToken))},
		{"to_target", "binary", ""},
		{"to_client", "binary", ""},
	}
	// Each direction is in order; how the two interleave depends on when each copying goroutine saw its bytes.
	for _, dir := range []string{"to_target", "to_client"} {
		var got []wsMessage
		for _, m := range data {
			if m.Direction == dir {
				got = append(got, m)
			}
		}
		i := 0
		for _, w := range want {
			if w.dir != dir {
				continue
			}
			if i >= len(got) {
				t.Errorf("%s: missing %+v", dir, w)
			} else if m := got[i]; m.Opcode != w.op || m.Text != w.text || m.Size == 0 {
				t.Errorf("%s message %d: %+v, want %+v", dir, i, m, w)
			}
			i++
		}
	}
	_, raw := f.gh.Do("GET", connsAPI+"/connections/"+id+"/trail?format=har", f.adm, nil)
	if !strings.Contains(string(raw), `"_webSocketMessages"`) {
		t.Errorf("HAR has no _webSocketMessages")
	}
	f.flushIndex()
	if p := f.search(map[string]any{"request_contains": `"watch":"pods"`}); p.Count != 1 || p.Items[0].Type != "websocket" {
		t.Errorf("message text is not searchable: %+v", p)
	}
	_, trailJSON := f.gh.Do("GET", connsAPI+"/connections/"+id+"/trail", f.adm, nil)
	for _, where := range []string{string(trailJSON), string(raw)} {
		noSecret(t, "the trail", where, c.Secret, wsToken)
	}
	for _, s := range []string{c.Secret, wsToken} {
		if p := f.search(map[string]any{"keywords": s}); p.Count != 0 {
			t.Errorf("a secret is searchable in the index")
		}
	}
}
