package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// trailChunkSize is the size of the pieces a trail is stored in: large enough that a trail is few rows, small
// enough that reading one back holds little memory.
const trailChunkSize = 1 << 20

// PutTrail copies a sealed trail into the database, replacing any copy, so that it outlives the recording node's
// disk.
func (s *Store) PutTrail(ctx context.Context, sessionID string, r io.Reader) error {
	return s.inTx(ctx, func(q conn) error {
		if _, err := q.exec(ctx, `DELETE FROM trail_chunks WHERE session_id = ?`, sessionID); err != nil {
			return fmt.Errorf("put trail %s: %w", sessionID, err)
		}
		buf := make([]byte, trailChunkSize)
		for seq := 0; ; seq++ {
			n, err := io.ReadFull(r, buf)
			if n > 0 {
				if _, ierr := q.exec(ctx, `INSERT INTO trail_chunks (session_id, seq, data) VALUES (?, ?, ?)`, sessionID, seq, buf[:n]); ierr != nil {
					return fmt.Errorf("put trail %s: %w", sessionID, ierr)
				}
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("put trail %s: %w", sessionID, err)
			}
		}
	})
}

// Trail opens the stored copy of a trail, or returns ErrNotExist. It reads one chunk at a time.
func (s *Store) Trail(ctx context.Context, sessionID string) (io.ReadCloser, error) {
	r := &trailReader{ctx: ctx, s: s, id: sessionID}
	if err := r.next(); err != nil {
		return nil, err
	}
	return r, nil
}

type trailReader struct {
	ctx context.Context
	s   *Store
	id  string
	seq int
	cur *bytes.Reader
}

func (r *trailReader) next() error {
	var b []byte
	err := mapErr(r.s.conn().queryRow(r.ctx, `SELECT data FROM trail_chunks WHERE session_id = ? AND seq = ?`, r.id, r.seq).Scan(&b))
	if err != nil {
		return fmt.Errorf("read trail %s: %w", r.id, err)
	}
	r.seq++
	r.cur = bytes.NewReader(b)
	return nil
}

func (r *trailReader) Read(p []byte) (int, error) {
	for r.cur.Len() == 0 {
		if err := r.next(); errors.Is(err, ErrNotExist) {
			return 0, io.EOF
		} else if err != nil {
			return 0, err
		}
	}
	return r.cur.Read(p)
}

func (r *trailReader) Close() error { return nil }

// DeleteTrail removes the stored copy of a trail; retention must call it beside removing the trail file, or the
// copy keeps the trail readable.
func (s *Store) DeleteTrail(ctx context.Context, sessionID string) error {
	if _, err := s.conn().exec(ctx, `DELETE FROM trail_chunks WHERE session_id = ?`, sessionID); err != nil {
		return fmt.Errorf("delete trail %s: %w", sessionID, err)
	}
	return nil
}
