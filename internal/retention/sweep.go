package retention

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/recording"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TombstoneDays is how long the record of a deleted session is kept for the nodes to delete their local copies of
// its trail: a node away for longer keeps those files until they are removed by hand.
const TombstoneDays = 90

// SweepStore is what a sweep needs of the database.
type SweepStore interface {
	DeletedTrailsAmong(ctx context.Context, ids []string) ([]string, error)
	ForgetDeletedTrails(ctx context.Context, before time.Time) error
}

// LocalTrails lists and deletes one node's trail files.
type LocalTrails interface {
	LocalTrails() ([]string, error)
	Delete(id string) error
}

var (
	_ SweepStore  = (*store.Store)(nil)
	_ LocalTrails = (*recording.Store)(nil)
)

// Sweep deletes a node's local trail files of sessions that retention deleted. Retention runs on one node of a
// cluster (the leader) and deletes the sessions for all of them, but every node keeps local copies of the trails it
// recorded; each node sweeps its own. A file is deleted only when the database holds the session's tombstone, never
// merely because the session is missing: a restored backup or a node pointed at the wrong database must not wipe
// the evidence on its disk.
type Sweep struct {
	Store  SweepStore
	Trails LocalTrails
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives what a sweep did; nil discards.
	Log *slog.Logger
}

// Tick sweeps once and returns the sessions whose local trails it deleted. A trail still being written is kept
// (its session is open, so retention did not delete it; the next sweep looks again).
func (w *Sweep) Tick(ctx context.Context) ([]string, error) {
	log := w.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	local, err := w.Trails.LocalTrails()
	if err != nil {
		return nil, err
	}
	gone, err := w.Store.DeletedTrailsAmong(ctx, local)
	if err != nil {
		return nil, err
	}
	var deleted []string
	var errs []error
	for _, id := range gone {
		if err := w.Trails.Delete(id); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted = append(deleted, id)
	}
	if len(deleted) > 0 {
		log.Info("deleted local trails of sessions that retention deleted", "trails", len(deleted))
	}
	if err := w.Store.ForgetDeletedTrails(ctx, now().AddDate(0, 0, -TombstoneDays)); err != nil {
		errs = append(errs, err)
	}
	return deleted, errors.Join(errs...)
}

// Run sweeps at once and then every interval until ctx ends.
func (w *Sweep) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := w.Tick(ctx); err != nil && ctx.Err() == nil && w.Log != nil {
			w.Log.Error("sweeping local trails failed; the next sweep tries again", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
