package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"
)

// requestIDs mints the id of every request the proxy answers: a random prefix drawn once per server (48 bits, so
// nodes and restarts do not collide) and a counter. Minting costs one atomic add and one small allocation, no
// system call. The id is in the access log, the trail, the audit event and every answer, so an admin can find the
// exchange behind a user's error.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return &requestIDs{prefix: hex.EncodeToString(b[:]) + "-"}
}

func (r *requestIDs) next() string {
	buf := make([]byte, 0, len(r.prefix)+16)
	buf = append(buf, r.prefix...)
	return string(strconv.AppendUint(buf, r.n.Add(1), 16))
}

// RequestIDHeader carries the request id on every answer to a proxied request, the target's included;
// the proxy's own refusals also carry it as X-Request-Id and in the JSON body.
const RequestIDHeader = "X-Gatehouse-Request-Id"
