package recording

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
)

// Recover marks every trail that was never closed, because the process
// stopped without closing it, by appending a chained interrupted record (after
// a newline and naming the torn bytes, if a partial line was left). It
// returns the ids of those sessions. Run it at start-up, before the first
// Create; trails with a live writer are skipped. A trail whose chain is
// broken is left alone and logged as an error: appending to it would not
// make it verifiable, and start-up must not fail because a file was
// tampered with.
func (s *Store) Recover(ctx context.Context) ([]string, error) {
	ids, err := s.sessionIDs()
	if err != nil {
		return nil, fmt.Errorf("recover trails: %w", err)
	}
	slices.Sort(ids)
	var recovered []string
	var errs []error
	for _, id := range ids {
		s.mu.Lock()
		_, live := s.live[id]
		s.mu.Unlock()
		if live {
			continue
		}
		ok, err := s.recoverOne(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			recovered = append(recovered, id)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return recovered, fmt.Errorf("recover trails: %w", err)
	}
	return recovered, nil
}

func (s *Store) recoverOne(ctx context.Context, id string) (bool, error) {
	c, err := s.check(ctx, id)
	if err != nil {
		return false, err
	}
	rep := c.report()
	switch {
	case !rep.OK:
		s.log.ErrorContext(ctx, "session trail fails verification; not recovered",
			"session", id, "line", rep.FirstBadLine, "problem", rep.Problem)
		return false, nil
	case rep.Closed || rep.Interrupted:
		return false, nil
	}
	var buf []byte
	info := &InterruptInfo{Reason: "gatehouse stopped without closing the session"}
	if c.pending {
		buf = append(buf, '\n')
		info.TornBytes = c.pendingLen
	}
	line, _, err := encodeLine(s.key, c.prev, &record{N: c.records + 1, Kind: KindInterrupted, Time: s.now(), Interrupted: info})
	if err != nil {
		return false, err
	}
	buf = append(buf, line...)
	name, _ := trailName(id) // id came from a valid file name
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return false, err
	}
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", id, err)
	}
	s.log.InfoContext(ctx, "marked session trail interrupted", "session", id, "torn_bytes", info.TornBytes)
	return true, nil
}
