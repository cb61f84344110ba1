// Package recording writes, reads, verifies and exports the session trails of
// the API proxy.
//
// # Trail files
//
// Each API session has one trail file, <dir>/<session-id>.trail, created
// with O_EXCL and mode 0600 and only ever appended to. A trail is a sequence
// of JSON lines. Every line is a record of one kind:
//
//   - "open": the session metadata (always line 1);
//   - "exchange": one request and its response, see [Exchange];
//   - "close": the session ended normally; nothing may follow it;
//   - "interrupted": written by [Store.Recover] at start-up for a trail
//     whose writer never closed it (crash, power loss); nothing may follow it.
//
// Bodies are stored as raw bytes, which encoding/json writes as standard
// base64. One lossless form keeps the writer simple and the MAC input
// unambiguous; the reader and the HAR export decode them.
//
// # Hash chain
//
// Each line carries "prev", the MAC of the line before (64 zero hex digits on
// line 1), and ends with "mac":
//
//	mac = HMAC-SHA256(chainKey, prev || body)
//
// where prev is the raw 32-byte previous MAC and body is the exact JSON
// object written for the record without its mac member. The writer emits
// body with its closing brace replaced by `,"mac":"<64 hex>"}` and a
// newline, so the verifier recovers body byte for byte by removing that fixed
// 74-byte suffix: no re-encoding and no canonicalisation rules. Because the
// chain is keyed, someone who can edit the file cannot recompute it after
// changing, deleting or reordering a line. Deleting whole lines from the end
// is only detectable against the seal ([Seal]) that [Writer.Close] returns;
// the caller stores it in the database.
//
// # Torn tails
//
// A record is written with a single write(2), so a crash can leave at most
// one partial line, at the end and without a trailing newline. Such a file is
// never rewritten: [Store.Recover] appends a newline and an "interrupted"
// record that names the number of torn bytes and chains to the last good
// line. [Store.Verify] accepts exactly that shape: one line that does not
// parse or verify, immediately followed by a valid interrupted record whose
// prev is the last good MAC and whose torn count equals the bad line's
// length. Any other bad line is reported as tampering at its line number.
//
// # Redaction
//
// [Writer.Append] redacts every exchange with the session's [Redactor] before
// it is encoded, so a secret never reaches the disk or a live subscriber.
// See [Redactor] for how truncation and redaction interact.
package recording
