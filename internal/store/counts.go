package store

import (
	"context"
	"fmt"
)

// Count is a number of events of one scope and key in one time bucket.
type Count struct {
	Scope, Key string
	Bucket     int64
	N          int64
}

// AddCounts adds a node's counts to the shared limiter counts.
func (s *Store) AddCounts(ctx context.Context, node string, counts []Count) error {
	if len(counts) == 0 {
		return nil
	}
	return s.inTx(ctx, func(q conn) error {
		for _, c := range counts {
			if _, err := q.exec(ctx, `INSERT INTO limiter_counts (scope, key, node_id, bucket, n) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (scope, key, node_id, bucket) DO UPDATE SET n = limiter_counts.n + excluded.n`,
				c.Scope, c.Key, node, c.Bucket, c.N); err != nil {
				return fmt.Errorf("add limiter counts: %w", err)
			}
		}
		return nil
	})
}

// OtherCounts sums the counts of every node but self from bucket since on, by scope and key, for at most limit
// keys (the busiest first).
func (s *Store) OtherCounts(ctx context.Context, self string, since int64, limit int) ([]Count, error) {
	rows, err := s.conn().query(ctx, `SELECT scope, key, SUM(n) AS total FROM limiter_counts WHERE node_id <> ? AND bucket >= ?
		GROUP BY scope, key ORDER BY total DESC LIMIT ?`, self, since, limit)
	if err != nil {
		return nil, fmt.Errorf("read limiter counts: %w", err)
	}
	defer rows.Close()
	var out []Count
	for rows.Next() {
		var c Count
		if err := rows.Scan(&c.Scope, &c.Key, &c.N); err != nil {
			return nil, mapErr(err)
		}
		out = append(out, c)
	}
	return out, mapErr(rows.Err())
}

// DeleteCountsBefore forgets limiter counts of buckets before the given one.
func (s *Store) DeleteCountsBefore(ctx context.Context, bucket int64) error {
	if _, err := s.conn().exec(ctx, `DELETE FROM limiter_counts WHERE bucket < ?`, bucket); err != nil {
		return fmt.Errorf("delete limiter counts: %w", err)
	}
	return nil
}
