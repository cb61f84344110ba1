package proxy

import (
	"bufio"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/wsframe"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/websocket"
)

const wsKey = "dGhlIHNhbXBsZSBub25jZQ=="

// switchingOrigin answers every request with a 101 and then echoes four bytes, the way an origin that blindly
// switches protocols (or a second proxy behind the target) would; accept chooses the Sec-WebSocket-Accept it
// sends ("" for none) and upgrade the Upgrade token. After the switch it reads what comes next, so a smuggled
// request would show up in piped.
type switchingOrigin struct {
	accept  func(r *http.Request) string
	upgrade string
	piped   atomic.Int64
}

func (o *switchingOrigin) handler(w http.ResponseWriter, r *http.Request) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	head := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + o.upgrade + "\r\nConnection: Upgrade\r\n"
	if a := o.accept(r); a != "" {
		head += "Sec-WebSocket-Accept: " + a + "\r\n"
	}
	brw.WriteString(head + "\r\n")
	brw.Flush()
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4)
	if n, err := io.ReadFull(brw, buf); err == nil {
		o.piped.Add(int64(n))
		conn.Write(buf) // echo
	}
}

func TestWebSocketUpgrade(t *testing.T) {
	o := &switchingOrigin{upgrade: "websocket", accept: func(r *http.Request) string {
		if r.Header.Get("Authorization") != "Bearer "+targetToken {
			return ""
		}
		return websocketAccept(r.Header.Get("Sec-WebSocket-Key"))
	}}
	st := newSetup(t, false, o.handler, nil)
	conn, br := plainTunnel(t, st.addr, st.origin.hostPort())
	resp := rawExchange(t, conn, br, "GET /ws HTTP/1.1\r\nHost: "+st.origin.hostPort()+"\r\nAuthorization: Bearer "+userSecret+
		"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "+wsKey+"\r\n\r\n")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	if _, err := io.WriteString(conn, "ping"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(bufio.NewReader(br), buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	if a := st.auth.requests(); len(a) == 0 || !a[len(a)-1].WebSocket {
		t.Errorf("authorizer was not told about the WebSocket channel: %+v", a)
	}
}

// TestUpgradeRefused pins issue 9's "any Upgrade is tunnelled": a request asking for any protocol switch but a
// complete WebSocket handshake is refused before it reaches the target, and a target's 101 is passed on only as
// the accept of the client's own WebSocket key. Before the fix an h2c upgrade gave the client a raw pipe to the
// origin on which later requests (GET /api/admin) were never authorized.
func TestUpgradeRefused(t *testing.T) {
	ws := "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + wsKey + "\r\n"
	good := func(r *http.Request) string { return websocketAccept(r.Header.Get("Sec-WebSocket-Key")) }
	for _, tc := range []struct {
		name    string
		head    string // request headers after Host and Authorization
		method  string
		upgrade string                       // what the origin switches to
		accept  func(r *http.Request) string // the origin's accept value
		want    int
		reach   bool // the origin may see the request
	}{
		{"h2c", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n", "GET", "h2c", good, 400, false},
		{"h2c without HTTP2-Settings", "Connection: Upgrade\r\nUpgrade: h2c\r\n", "GET", "h2c", good, 400, false},
		{"HTTP2-Settings alone", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n", "GET", "h2c", good, 400, false},
		{"invented token", "Connection: Upgrade\r\nUpgrade: gatehouse-raw\r\n", "GET", "gatehouse-raw", good, 400, false},
		{"TLS upgrade", "Connection: Upgrade\r\nUpgrade: TLS/1.2\r\n", "GET", "TLS/1.2", good, 400, false},
		{"two tokens", "Connection: Upgrade\r\nUpgrade: websocket, h2c\r\n" + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + wsKey + "\r\n", "GET", "h2c", good, 400, false},
		{"two Upgrade headers", ws + "Upgrade: h2c\r\n", "GET", "h2c", good, 400, false},
		{"Upgrade without Connection", "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + wsKey + "\r\n", "GET", "websocket", good, 400, false},
		{"Connection upgrade without Upgrade", "Connection: Upgrade\r\n", "GET", "websocket", good, 400, false},
		{"websocket without key", "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n", "GET", "websocket", good, 400, false},
		{"websocket with a short key", "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: c2hvcnQ=\r\n", "GET", "websocket", good, 400, false},
		{"websocket old version", "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: " + wsKey + "\r\n", "GET", "websocket", good, 400, false},
		{"websocket by POST", ws, "POST", "websocket", good, 400, false},
		// The target answers, but not as a WebSocket server would: the switch is refused.
		{"101 without accept", ws, "GET", "websocket", func(*http.Request) string { return "" }, 502, true},
		{"101 with the accept of another key", ws, "GET", "websocket", func(*http.Request) string { return websocketAccept("AAAAAAAAAAAAAAAAAAAAAA==") }, 502, true},
		{"101 to another protocol", ws, "GET", "h2c", good, 502, true},
		{"101 to a request that asked for nothing", "", "GET", "websocket", good, 502, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &switchingOrigin{upgrade: tc.upgrade, accept: tc.accept}
			st := newSetup(t, false, o.handler, nil)
			host := st.origin.hostPort()
			conn, br := plainTunnel(t, st.addr, host)
			resp := rawExchange(t, conn, br, tc.method+" /api/items HTTP/1.1\r\nHost: "+host+"\r\nAuthorization: Bearer "+userSecret+"\r\n"+tc.head+"\r\n")
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
			if !strings.Contains(string(body), `"error_code"`) {
				t.Errorf("refusal without a JSON error: %q", body)
			}
			if hits := st.origin.hits.Load(); !tc.reach && hits != 0 {
				t.Errorf("origin saw %d requests, want none", hits)
			}
			// Whatever the client sends next is a new HTTP request on the tunnel, never raw bytes in a pipe.
			_, _ = io.WriteString(conn, "GET /denied/admin HTTP/1.1\r\nHost: "+host+"\r\nAuthorization: Bearer "+userSecret+"\r\n\r\n")
			_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
			if next, err := http.ReadResponse(br, nil); err == nil {
				next.Body.Close()
				if next.StatusCode != http.StatusForbidden {
					t.Errorf("the next request on the tunnel got %d, want the policy's 403", next.StatusCode)
				}
			}
			if n := o.piped.Load(); n != 0 {
				t.Errorf("origin received %d bytes through an unchecked pipe", n)
			}
		})
	}
}

// FuzzCheckUpgrade: a request passes as a WebSocket upgrade only with the complete handshake, passes as a plain
// request only when it names no upgrade at all, and is refused otherwise.
func FuzzCheckUpgrade(f *testing.F) {
	f.Add("GET", "websocket", "Upgrade", "13", wsKey, "")
	f.Add("GET", "h2c", "Upgrade, HTTP2-Settings", "", "", "AAMAAABkAARAAAAAAAIAAAAA")
	f.Add("GET", "", "keep-alive", "", "", "")
	f.Add("POST", "WebSocket ", "upgrade", "13", wsKey, "")
	f.Add("GET", "websocket", "close, upgrade", "13", "c2hvcnQ=", "")
	f.Fuzz(func(t *testing.T, method, upgrade, connection, version, key, settings string) {
		r := &http.Request{Method: method, ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}}
		for name, v := range map[string]string{"Upgrade": upgrade, "Connection": connection, "Sec-Websocket-Version": version,
			"Sec-Websocket-Key": key, "Http2-Settings": settings} {
			if v != "" {
				r.Header.Set(name, v)
			}
		}
		ws, err := checkUpgrade(r)
		switch {
		case ws && err != nil:
			t.Fatal("both WebSocket and refused")
		case ws:
			if method != "GET" || !strings.EqualFold(strings.TrimSpace(upgrade), "websocket") || !headerHasToken(r.Header, "Connection", "upgrade") ||
				strings.TrimSpace(version) != "13" || settings != "" {
				t.Fatalf("passed as WebSocket: %q %q %q %q %q", method, upgrade, connection, version, settings)
			}
			if _, ok := websocketKey(r.Header); !ok {
				t.Fatalf("passed with key %q", key)
			}
		case err == nil:
			if upgrade != "" || settings != "" || headerHasToken(r.Header, "Connection", "upgrade") {
				t.Fatalf("passed as a plain request although it asks to switch: %q %q %q", upgrade, connection, settings)
			}
		}
	})
}

// TestWebSocketMessagesRecorded runs a real WebSocket client (x/net/websocket) through the proxy to a real
// WebSocket origin and checks that the audited exchange carries every message: direction, opcode, size, text
// content, and binary as size only.
func TestWebSocketMessagesRecorded(t *testing.T) {
	rec := &fakeRecorder{}
	echo := websocket.Handler(func(ws *websocket.Conn) {
		for {
			var msg []byte
			frame, err := ws.NewFrameReader()
			if err != nil {
				return
			}
			if msg, err = io.ReadAll(frame); err != nil || frame.PayloadType() == websocket.CloseFrame {
				return
			}
			if frame.PayloadType() == websocket.BinaryFrame {
				err = websocket.Message.Send(ws, msg)
			} else {
				err = websocket.Message.Send(ws, "echo: "+string(msg))
			}
			if err != nil {
				return
			}
		}
	})
	st := newSetup(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+targetToken {
			http.Error(w, "no target credential", http.StatusUnauthorized)
			return
		}
		echo.ServeHTTP(w, r)
	}, func(s *Server, tg *Target) {
		s.Recorder = rec
		s.BodyLimit = 16
		tg.AuditEnabled = true
	})
	conn, _ := plainTunnel(t, st.addr, st.origin.hostPort())
	cfg, err := websocket.NewConfig("ws://"+st.origin.hostPort()+"/ws", "http://"+st.origin.hostPort())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Header = http.Header{"Authorization": {"Bearer " + userSecret}, "Sec-Websocket-Extensions": {"permessage-deflate"}}
	ws, err := websocket.NewClient(cfg, conn)
	if err != nil {
		t.Fatalf("websocket handshake through the proxy: %v", err)
	}
	long := strings.Repeat("x", 40) // longer than the capture limit
	for _, m := range []string{"hello", "\x01\x02\x03\x04\x05", long} {
		var send any = m
		if m == "\x01\x02\x03\x04\x05" {
			send = []byte(m)
		}
		if err := websocket.Message.Send(ws, send); err != nil {
			t.Fatal(err)
		}
		var got any
		if m != "\x01\x02\x03\x04\x05" {
			var s string
			err = websocket.Message.Receive(ws, &s)
			got = s
		} else {
			var b []byte
			err = websocket.Message.Receive(ws, &b)
			got = string(b)
		}
		if err != nil {
			t.Fatalf("receive echo of %v: %v", m, err)
		}
		if got != m && got != "echo: "+m {
			t.Fatalf("echo %q for %v", got, m)
		}
	}
	ws.Close()
	if h := st.origin.lastHeader(); h.Get("Sec-Websocket-Extensions") != "" {
		t.Errorf("the origin got Sec-WebSocket-Extensions %q: a compressed session could not be recorded", h.Get("Sec-Websocket-Extensions"))
	}

	ex := rec.first(t)
	if !ex.WebSocket || ex.Status != http.StatusSwitchingProtocols || ex.Proto != "HTTP/1.1" {
		t.Fatalf("exchange: websocket %v, status %d, proto %q", ex.WebSocket, ex.Status, ex.Proto)
	}
	type msg struct {
		Dir, Op string
		Size    int64
		Text    string
		Trunc   bool
	}
	var got []msg
	for _, m := range ex.WSMessages {
		if m.Opcode == "close" {
			continue // who closes first is up to the libraries
		}
		got = append(got, msg{m.Direction, m.Opcode, m.Size, m.Text, m.Truncated})
	}
	want := []msg{
		{"to_target", "text", 5, "hello", false},
		{"to_client", "text", 11, "echo: hello", false},
		{"to_target", "binary", 5, "", false},
		{"to_client", "binary", 5, "", false},
		{"to_target", "text", 40, long[:16], true},
		{"to_client", "text", 46, "echo: " + long[:10], true},
	}
	// Each direction is in order; how the two interleave depends on when each copying goroutine saw its bytes.
	byDir := func(in []msg, dir string) []msg {
		var out []msg
		for _, m := range in {
			if m.Dir == dir {
				out = append(out, m)
			}
		}
		return out
	}
	for _, dir := range []string{"to_target", "to_client"} {
		if diff := cmp.Diff(byDir(want, dir), byDir(got, dir)); diff != "" {
			t.Errorf("recorded messages %s (-want +got):\n%s", dir, diff)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d messages recorded, want %d", len(got), len(want))
	}
	if ex.UpgradeBytesIn == 0 || ex.UpgradeBytesOut == 0 {
		t.Errorf("upgrade byte counts %d/%d", ex.UpgradeBytesIn, ex.UpgradeBytesOut)
	}
}

// TestWSCaptureBounded: a long, chatty connection keeps at most maxWSMessages messages and maxWSText bytes of text;
// the rest is counted, not kept.
func TestWSCaptureBounded(t *testing.T) {
	c := newWSCapture(64 << 10)
	text := strings.Repeat("x", 60<<10)
	for range maxWSMessages + 5 {
		c.add(wsframe.Message{Direction: wsframe.ToTarget, Opcode: "text", Size: int64(len(text)), Text: text})
	}
	msgs, dropped := c.snapshot()
	kept := 0
	for _, m := range msgs {
		kept += len(m.Text)
	}
	if len(msgs) != maxWSMessages || dropped != 5 || kept > maxWSText || kept == 0 {
		t.Fatalf("%d messages, %d dropped, %d bytes of text", len(msgs), dropped, kept)
	}
	if last := msgs[len(msgs)-1]; last.Text != "" || !last.Truncated || last.Size != int64(len(text)) {
		t.Errorf("a message past the text budget: %+v", last)
	}
}

// TestWebSocketRecordedUncompressedWithoutScrubber: an audited target that injects no secret (no credential, or a
// client certificate, so there is nothing to scrub) still gets no permessage-deflate offer, because a compressed
// message could not be recorded, redacted or searched; an unaudited one gets the client's offer as it was.
func TestWebSocketRecordedUncompressedWithoutScrubber(t *testing.T) {
	for _, audited := range []bool{true, false} {
		var got atomic.Value
		st := newSetup(t, false, func(w http.ResponseWriter, r *http.Request) {
			got.Store(r.Header.Values("Sec-Websocket-Extensions"))
			websocket.Handler(func(ws *websocket.Conn) {}).ServeHTTP(w, r)
		}, func(s *Server, tg *Target) {
			s.Recorder = &fakeRecorder{}
			tg.AuditEnabled = audited
			tg.Credential = TargetCredential{Type: CredentialNone}
		})
		conn, _ := plainTunnel(t, st.addr, st.origin.hostPort())
		cfg, err := websocket.NewConfig("ws://"+st.origin.hostPort()+"/ws", "http://"+st.origin.hostPort())
		if err != nil {
			t.Fatal(err)
		}
		cfg.Header = http.Header{"Authorization": {"Bearer " + userSecret}, "Sec-Websocket-Extensions": {"permessage-deflate"}}
		ws, err := websocket.NewClient(cfg, conn)
		if err != nil {
			t.Fatalf("audited %v: websocket handshake through the proxy: %v", audited, err)
		}
		ws.Close()
		ext, _ := got.Load().([]string)
		if audited && len(ext) != 0 {
			t.Errorf("audited target got Sec-WebSocket-Extensions %q: its messages would be recorded compressed", ext)
		}
		if !audited && !slices.Equal(ext, []string{"permessage-deflate"}) {
			t.Errorf("unaudited target got Sec-WebSocket-Extensions %q, want the client's offer", ext)
		}
	}
}
