package recording

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/wsframe"
)

// checkSameAsMarshal holds appendExchangeRecord to json.Marshal's bytes for the same record.
func checkSameAsMarshal(t *testing.T, ex *Exchange) {
	t.Helper()
	prev := sha256.Sum256([]byte(ex.URL))
	rec := &record{N: 7, Kind: KindExchange, Time: time.Date(2026, 12, 1, 11, 0, 0, 123456789, time.UTC), Exchange: ex}
	got, ok := appendExchangeRecord([]byte("prefix"), rec, prev)
	rec.Prev = hex.EncodeToString(prev[:])
	want, err := json.Marshal(rec)
	if !ok {
		if err == nil {
			t.Errorf("appendExchangeRecord refused what json.Marshal encodes: %s", want)
		}
		return
	}
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	if !bytes.Equal(got[len("prefix"):], want) || !bytes.HasPrefix(got, []byte("prefix")) {
		t.Errorf("appendExchangeRecord:\n%s\njson.Marshal:\n%s", got, want)
	}
}

func TestAppendExchangeRecordIsJSONMarshal(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	for _, ex := range []*Exchange{
		{},
		{Seq: 1, ID: "req-1", Started: time.Date(2026, 1, 2, 3, 4, 5, 0, cet), DurationMS: 0.5, Method: "GET",
			URL: "https://api.example/x?a=1&b=<2>", Proto: "HTTP/1.1", Status: 200,
			RequestHeaders:  http.Header{"Authorization": {"Bearer [REDACTED]"}, "X-Multi": {"a", "b"}, "X-Nil": nil, "X-Empty": {}},
			ResponseHeaders: http.Header{"Content-Type": {"application/json"}},
			RequestBody:     []byte(`{"q":"x"}`), ResponseBody: []byte{0, 1, 2, 0xff}, RequestBodyTruncated: true,
			ResponseBodyTruncated: true, RequestBytes: 9, ResponseBytes: 1 << 40, Error: "upstream \"timeout\"\n",
			Decision: "denied: path \u2028 refused", WebSocket: true, WSFramesToTarget: 1, WSFramesToClient: 2,
			WSBytesToTarget: 3, WSBytesToClient: 4, WSMessagesDropped: 5,
			WSMessages: []wsframe.Message{{Direction: wsframe.ToTarget, Opcode: "text", Text: "hi"}}},
		{Method: "POST", URL: "bad \xff utf8 \x01\x1f\t\r\b\f \\ ü 日本", DurationMS: 1e-7, WaitMS: 1e21},
		{DurationMS: 123456.789, WaitMS: -0.000001, Status: -1, RequestBytes: -5},
		{DurationMS: 1.5e300, Started: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)},
		{DurationMS: math.NaN()},
		{Started: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		checkSameAsMarshal(t, ex)
	}
}

func FuzzAppendExchangeRecord(f *testing.F) {
	f.Add("GET", "https://h/p?q=<x>&y", "Bearer x", []byte("body"), 12.5, int64(3))
	f.Add("\xff\x00", "\u2029", "\"\\", []byte{}, 1e-9, int64(-1))
	f.Fuzz(func(t *testing.T, method, url, hv string, body []byte, d float64, n int64) {
		checkSameAsMarshal(t, &Exchange{Seq: n, Method: method, URL: url, DurationMS: d, Error: hv, RequestBody: body,
			RequestHeaders: http.Header{hv: {hv, method}, "K": {url}}, ResponseBytes: n})
	})
}
