package recording

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// VerifyReport is the outcome of checking one trail's hash chain.
type VerifyReport struct {
	SessionID string
	// OK is true when no line was altered, inserted, deleted or reordered.
	// A torn tail does not make a trail not OK.
	OK bool
	// FirstBadLine is the 1-based line number where the chain first breaks,
	// or 0 when OK.
	FirstBadLine int
	// Problem says what is wrong with FirstBadLine.
	Problem string
	// Records counts the records that verified, in chain order; Head is
	// the MAC of the last of them. Compare them with the Seal saved at
	// Close to detect lines removed from the end.
	Records int64
	Head    string
	// Closed means the trail ends with a close record, Interrupted that it
	// ends with an interrupted one (written by Recover).
	Closed      bool
	Interrupted bool
	// TornTail means a crash left a partial last line. Once Recover has run
	// it is followed by an interrupted record and Interrupted is set too.
	TornTail bool
}

// Verify recomputes the hash chain of the session's trail. Tampering is
// reported in the VerifyReport, not as an error; the error is for a trail
// that cannot be read (ErrNotExist for an unknown session). See the package
// documentation for the torn-tail rule.
func (s *Store) Verify(ctx context.Context, sessionID string) (VerifyReport, error) {
	c, err := s.check(ctx, sessionID)
	if err != nil {
		return VerifyReport{}, fmt.Errorf("verify trail: %w", err)
	}
	return c.report(), nil
}

// check runs a chainCheck over the session's trail.
func (s *Store) check(ctx context.Context, sessionID string) (*chainCheck, error) {
	f, err := s.openTrail(sessionID)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c := &chainCheck{id: sessionID, key: s.key}
	if err := eachLine(ctx, f, c.line); err != nil {
		return nil, fmt.Errorf("%s: %w", sessionID, err)
	}
	c.finish()
	return c, nil
}

// chainCheck follows a trail line by line.
type chainCheck struct {
	id  string
	key []byte

	prev    [sha256.Size]byte
	records int64
	ended   string // KindClose or KindInterrupted once the trail has ended

	// A bad line is held pending: it is a torn tail if nothing follows it
	// (and it lacks its newline) or only a matching interrupted record does.
	pending        bool
	pendingLine    int
	pendingLen     int
	pendingProblem string
	pendingNewline bool
	torn           bool

	firstBad int
	problem  string
}

func (c *chainCheck) line(lineNo int, line []byte, complete bool) error {
	if c.firstBad != 0 {
		return nil
	}
	p, perr := parseLine(line)
	problem := c.lineProblem(&p, perr, complete)
	switch {
	case c.pending:
		ir := p.rec.Interrupted
		if problem == "" && ir != nil && ir.TornBytes == c.pendingLen && ir.TornBytes > 0 {
			c.pending, c.torn = false, true
			c.accept(&p)
			return nil
		}
		c.fail(c.pendingLine, c.pendingProblem)
	case problem == "":
		if ir := p.rec.Interrupted; ir != nil && ir.TornBytes != 0 {
			c.fail(lineNo, "interrupted record claims a torn line that is not there")
			return nil
		}
		c.accept(&p)
	case c.ended != "":
		c.fail(lineNo, problem)
	default:
		c.pending = true
		c.pendingLine, c.pendingLen, c.pendingProblem, c.pendingNewline = lineNo, len(line), problem, complete
	}
	return nil
}

// lineProblem says what is wrong with p as the next line of the chain, or "".
func (c *chainCheck) lineProblem(p *parsedLine, perr error, complete bool) string {
	r := &p.rec
	switch {
	case perr != nil:
		return perr.Error()
	case !p.checkMAC(c.key):
		return "mac does not verify"
	case p.prev != c.prev:
		return "prev does not match the line before"
	case r.N != c.records+1:
		return fmt.Sprintf("record number %d, want %d", r.N, c.records+1)
	case !complete:
		return "line has no newline"
	case c.ended != "":
		return "record after the end of the trail"
	case c.records == 0 && r.Kind != KindOpen && r.Kind != KindInterrupted:
		return "trail does not start with an open record"
	case c.records > 0 && r.Kind == KindOpen:
		return "second open record"
	case r.Kind == KindOpen && r.Open.SessionID != c.id:
		return fmt.Sprintf("open record names session %q", r.Open.SessionID)
	}
	return ""
}

func (c *chainCheck) accept(p *parsedLine) {
	c.prev = p.mac
	c.records++
	if k := p.rec.Kind; k == KindClose || k == KindInterrupted {
		c.ended = k
	}
}

func (c *chainCheck) fail(lineNo int, problem string) {
	c.firstBad, c.problem = lineNo, problem
}

// finish settles a pending bad line at the end of the trail: without its
// newline it is a torn tail, with it someone changed the last line.
func (c *chainCheck) finish() {
	if !c.pending || c.firstBad != 0 {
		return
	}
	if c.pendingNewline {
		c.fail(c.pendingLine, c.pendingProblem)
		return
	}
	c.torn = true
}

func (c *chainCheck) report() VerifyReport {
	return VerifyReport{
		SessionID:    c.id,
		OK:           c.firstBad == 0,
		FirstBadLine: c.firstBad,
		Problem:      c.problem,
		Records:      c.records,
		Head:         hex.EncodeToString(c.prev[:]),
		Closed:       c.firstBad == 0 && c.ended == KindClose,
		Interrupted:  c.firstBad == 0 && c.ended == KindInterrupted,
		TornTail:     c.firstBad == 0 && c.torn,
	}
}

// SealCheck is a verified trail compared with the seal its session stored at close.
type SealCheck struct {
	// Sealed says a seal was stored: the session closed normally.
	Sealed bool
	// Matches says the trail ends exactly where the seal says: same record count, same last MAC, and a close
	// record. Only meaningful when Sealed.
	Matches bool
	// Problem explains a mismatch, "" otherwise.
	Problem string
}

// CheckSeal compares rep with seal, the one stored when the session closed; a zero seal means none was stored
// (the session is open, or it was interrupted). A closed trail is only whole if it matches: the chain alone cannot
// show records cut from its end. The service API and the offline verifier both decide with this function.
func CheckSeal(rep VerifyReport, seal Seal) SealCheck {
	if seal.Records == 0 {
		return SealCheck{}
	}
	c := SealCheck{Sealed: true, Matches: rep.Closed && rep.Records == seal.Records && rep.Head == seal.Head}
	if !c.Matches {
		c.Problem = fmt.Sprintf("the trail does not match the seal stored at close (%d records, head %.16s...): records were removed or replaced", seal.Records, seal.Head)
	}
	return c
}
