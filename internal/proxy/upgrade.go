package proxy

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
)

// An upgraded connection is a raw pipe: after a 101, no request on it is seen, authorized or recorded by the
// proxy. So only the one upgrade whose protocol is known, WebSocket, may pass, and only with a complete opening
// handshake (RFC 6455 section 4.1) that the target provably answered (section 4.2.2). Everything else that asks
// for a protocol switch (h2c, TLS/1.0, an invented token) is refused before it is authorized, so it never reaches
// a target.

// websocketGUID is the RFC 6455 constant the accept value is derived with.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// errUpgradeRefused is the cause of every refused upgrade request.
var errUpgradeRefused = errors.New("protocol upgrade refused")

// checkUpgrade decides whether a request may switch protocols. It returns websocket true for a complete WebSocket
// opening handshake, false for a request that asks for no upgrade at all, and an error (refuse with 400) for any
// other request that names an upgrade in either header, or HTTP2-Settings.
func checkUpgrade(r *http.Request) (websocket bool, err error) {
	h := r.Header
	upgrades := h.Values("Upgrade")
	connUpgrade := headerHasToken(h, "Connection", "upgrade")
	if len(h.Values("Http2-Settings")) > 0 {
		return false, refuseUpgrade("HTTP2-Settings (h2c upgrade) is not forwarded")
	}
	if len(upgrades) == 0 && !connUpgrade {
		return false, nil
	}
	switch {
	case len(upgrades) != 1 || !strings.EqualFold(strings.TrimSpace(upgrades[0]), "websocket"):
		return false, refuseUpgrade("only WebSocket upgrades are forwarded")
	case !connUpgrade:
		return false, refuseUpgrade("Upgrade without Connection: upgrade")
	case r.ProtoMajor != 1 || r.ProtoMinor != 1:
		return false, refuseUpgrade("WebSocket needs HTTP/1.1")
	case r.Method != http.MethodGet:
		return false, refuseUpgrade("WebSocket handshake must be a GET")
	case r.ContentLength != 0 || len(r.TransferEncoding) > 0:
		return false, refuseUpgrade("WebSocket handshake with a body")
	}
	if v := h.Values("Sec-Websocket-Version"); len(v) != 1 || strings.TrimSpace(v[0]) != "13" {
		return false, refuseUpgrade("WebSocket handshake needs Sec-WebSocket-Version: 13")
	}
	if _, ok := websocketKey(h); !ok {
		return false, refuseUpgrade("WebSocket handshake needs one Sec-WebSocket-Key of 16 bytes")
	}
	return true, nil
}

func refuseUpgrade(msg string) *httpError {
	return badRequest("protocol upgrade refused: "+msg, errUpgradeRefused)
}

// websocketKey returns the client's Sec-WebSocket-Key if there is exactly one and it is base64 of 16 bytes.
func websocketKey(h http.Header) (string, bool) {
	v := h.Values("Sec-Websocket-Key")
	if len(v) != 1 {
		return "", false
	}
	key := strings.TrimSpace(v[0])
	raw, err := base64.StdEncoding.DecodeString(key)
	return key, err == nil && len(raw) == 16
}

// websocketAccept is the Sec-WebSocket-Accept a server must answer to key.
func websocketAccept(key string) string {
	sum := sha1.Sum([]byte(key + websocketGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// checkSwitch vets a 101 from the target. A target that switches protocols for a request that was not a WebSocket
// handshake, or answers one without the accept value of the client's own key, is not speaking WebSocket (an origin
// that answers 101 to anything, or a second proxy behind the target), and the pipe it offers could carry requests
// the policy never saw.
func checkSwitch(req *http.Request, resp *http.Response, websocket bool) error {
	if !websocket {
		return &refusedResponseError{"target switched protocols for a request that asked for no upgrade"}
	}
	if up := resp.Header.Values("Upgrade"); len(up) != 1 || !strings.EqualFold(strings.TrimSpace(up[0]), "websocket") ||
		!headerHasToken(resp.Header, "Connection", "upgrade") {
		return &refusedResponseError{"target switched to a protocol other than WebSocket"}
	}
	key, ok := websocketKey(req.Header)
	if !ok {
		return &refusedResponseError{"WebSocket request lost its key"}
	}
	if acc := resp.Header.Values("Sec-Websocket-Accept"); len(acc) != 1 || strings.TrimSpace(acc[0]) != websocketAccept(key) {
		return &refusedResponseError{"target's Sec-WebSocket-Accept does not answer the client's key"}
	}
	return nil
}

// refusedResponseError is a target response the proxy will not pass on; the client gets 502.
type refusedResponseError struct{ msg string }

func (e *refusedResponseError) Error() string { return "response refused: " + e.msg }
