package recording

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// Page is a window on a session's trail.
type Page struct {
	Meta SessionMeta
	// Items are the exchanges from the requested offset on.
	Items []Exchange
	// Total counts all exchanges of the trail.
	Total int
	// Close is set once the session has been closed.
	Close *CloseInfo
	// Interrupted is set when the session ended without being closed.
	Interrupted *InterruptInfo
}

// Read returns up to limit exchanges of the session's trail, skipping the
// first offset; limit <= 0 means all. Read shows what the trail says and
// does not check its chain: lines that do not parse (a torn tail) are
// skipped. Use Verify to establish that the trail is intact.
func (s *Store) Read(ctx context.Context, sessionID string, offset, limit int) (Page, error) {
	var page Page
	f, err := s.openTrail(sessionID)
	if err != nil {
		return page, fmt.Errorf("read trail: %w", err)
	}
	defer f.Close()
	err = eachLine(ctx, f, func(lineNo int, line []byte, _ bool) error {
		p, err := parseLine(line)
		if err != nil {
			s.log.DebugContext(ctx, "skipping bad trail line", "session", sessionID, "line", lineNo, "err", err)
			return nil
		}
		switch r := p.rec; r.Kind {
		case KindOpen:
			page.Meta = *r.Open
		case KindExchange:
			if page.Total >= offset && (limit <= 0 || len(page.Items) < limit) {
				page.Items = append(page.Items, *r.Exchange)
			}
			page.Total++
		case KindClose:
			page.Close = r.Close
		case KindInterrupted:
			page.Interrupted = r.Interrupted
		}
		return nil
	})
	if err != nil {
		return Page{}, fmt.Errorf("read trail %s: %w", sessionID, err)
	}
	return page, nil
}

// eachLine calls fn for every line of r, numbered from 1, without its
// newline; complete says whether the newline was there (only the last line
// can lack it).
func eachLine(ctx context.Context, r io.Reader, fn func(lineNo int, line []byte, complete bool) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for lineNo := 1; ; lineNo++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			complete := bytes.HasSuffix(line, []byte("\n"))
			if ferr := fn(lineNo, bytes.TrimSuffix(line, []byte("\n")), complete); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
