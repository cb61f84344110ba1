package recording

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendExchangeRecord appends the JSON of an exchange record chained to prev, byte for byte what json.Marshal writes for it
// (TestAppendExchangeRecordIsJSONMarshal holds it to that). A trail writes one per request, and reflection over the
// record, its two header maps and their sorting was most of what recording allocated. ok is false for what only
// json.Marshal may encode (a time outside years 0-9999, a duration that is not a number); the caller falls back.
func appendExchangeRecord(dst []byte, rec *record, prev [sha256.Size]byte) (out []byte, ok bool) {
	ex := rec.Exchange
	if !jsonTime(rec.Time) || !jsonTime(ex.Started) || !jsonFloat(ex.DurationMS) || !jsonFloat(ex.WaitMS) {
		return dst, false
	}
	dst = append(dst, `{"n":`...)
	dst = strconv.AppendInt(dst, rec.N, 10)
	dst = append(dst, `,"kind":`...)
	dst = appendJSONString(dst, rec.Kind)
	dst = append(dst, `,"time":`...)
	dst = appendJSONTime(dst, rec.Time)
	dst = append(dst, `,"exchange":{"seq":`...)
	dst = strconv.AppendInt(dst, ex.Seq, 10)
	if ex.ID != "" {
		dst = append(dst, `,"id":`...)
		dst = appendJSONString(dst, ex.ID)
	}
	dst = append(dst, `,"started":`...)
	dst = appendJSONTime(dst, ex.Started)
	dst = append(dst, `,"duration_ms":`...)
	dst = appendJSONFloat(dst, ex.DurationMS)
	if ex.WaitMS != 0 {
		dst = append(dst, `,"wait_ms":`...)
		dst = appendJSONFloat(dst, ex.WaitMS)
	}
	dst = append(dst, `,"method":`...)
	dst = appendJSONString(dst, ex.Method)
	dst = append(dst, `,"url":`...)
	dst = appendJSONString(dst, ex.URL)
	dst = appendOmitString(dst, `,"proto":`, ex.Proto)
	dst = appendOmitInt(dst, `,"status":`, int64(ex.Status))
	dst = appendJSONHeader(dst, `,"request_headers":`, ex.RequestHeaders)
	dst = appendJSONHeader(dst, `,"response_headers":`, ex.ResponseHeaders)
	dst = appendJSONBytes(dst, `,"request_body":`, ex.RequestBody)
	dst = appendJSONBytes(dst, `,"response_body":`, ex.ResponseBody)
	if ex.RequestBodyTruncated {
		dst = append(dst, `,"request_body_truncated":true`...)
	}
	if ex.ResponseBodyTruncated {
		dst = append(dst, `,"response_body_truncated":true`...)
	}
	dst = append(dst, `,"request_bytes":`...)
	dst = strconv.AppendInt(dst, ex.RequestBytes, 10)
	dst = append(dst, `,"response_bytes":`...)
	dst = strconv.AppendInt(dst, ex.ResponseBytes, 10)
	dst = appendOmitString(dst, `,"error":`, ex.Error)
	dst = appendOmitString(dst, `,"decision":`, ex.Decision)
	if ex.WebSocket {
		dst = append(dst, `,"websocket":true`...)
	}
	dst = appendOmitInt(dst, `,"ws_frames_to_target":`, ex.WSFramesToTarget)
	dst = appendOmitInt(dst, `,"ws_frames_to_client":`, ex.WSFramesToClient)
	dst = appendOmitInt(dst, `,"ws_bytes_to_target":`, ex.WSBytesToTarget)
	dst = appendOmitInt(dst, `,"ws_bytes_to_client":`, ex.WSBytesToClient)
	if len(ex.WSMessages) > 0 {
		b, err := json.Marshal(ex.WSMessages) // rare; not worth a second encoder
		if err != nil {
			return dst, false
		}
		dst = append(dst, `,"ws_messages":`...)
		dst = append(dst, b...)
	}
	dst = appendOmitInt(dst, `,"ws_messages_dropped":`, ex.WSMessagesDropped)
	dst = append(dst, `},"prev":"`...)
	dst = hex.AppendEncode(dst, prev[:])
	return append(dst, `"}`...), true
}

func jsonTime(t time.Time) bool { y := t.Year(); return y >= 0 && y <= 9999 }

func jsonFloat(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func appendJSONTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

// appendJSONFloat formats f as encoding/json does: like ES6, exponents only for very small and very large numbers.
func appendJSONFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

func appendOmitString(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	return appendJSONString(append(dst, key...), s)
}

func appendOmitInt(dst []byte, key string, n int64) []byte {
	if n == 0 {
		return dst
	}
	return strconv.AppendInt(append(dst, key...), n, 10)
}

func appendJSONBytes(dst []byte, key string, b []byte) []byte {
	if len(b) == 0 {
		return dst
	}
	dst = append(dst, key...)
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// appendJSONHeader writes h as encoding/json writes a map: keys sorted, a nil value list as null.
func appendJSONHeader(dst []byte, key string, h http.Header) []byte {
	if len(h) == 0 {
		return dst
	}
	var small [32]string
	names := small[:0]
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	dst = append(dst, key...)
	dst = append(dst, '{')
	for i, name := range names {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, name)
		dst = append(dst, ':')
		values := h[name]
		if values == nil {
			dst = append(dst, "null"...)
			continue
		}
		dst = append(dst, '[')
		for j, v := range values {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, v)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

const hexChars = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does with HTML escaping on: <, > and & as \u003c..., control
// characters as \n, \t... or \u00XX, invalid UTF-8 as \ufffd, and U+2028 and U+2029 escaped.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexChars[b>>4], hexChars[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexChars[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
