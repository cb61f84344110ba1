// Package retention deletes API sessions, their trails and their trail-index entries once they are older than the
// configured number of days (channel_database_cleanup, per connection policy and in http/options), as a background
// job whose every run that deletes or fails is an audit event. Sessions under a legal hold are kept.
package retention

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/recording"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Rules say how long sessions are kept, in days; 0 means forever.
type Rules struct {
	// Global applies to sessions whose connection policy sets no cleanup of its own (http/options).
	Global int
	// PerPolicy maps a connection policy key to its days, for policies with cleanup enabled.
	PerPolicy map[string]int
}

// Store is what the job needs of the database.
type Store interface {
	ExpiredSessions(ctx context.Context, group store.RetentionGroup, cutoff time.Time, limit int) ([]store.ExpiredSession, error)
	DeleteSessions(ctx context.Context, ids []string) ([]string, error)
	AppendAudit(ctx context.Context, e *model.AuditEvent) error
}

// Trails deletes trail files.
type Trails interface {
	Delete(id string) error
}

var (
	_ Store  = (*store.Store)(nil)
	_ Trails = (*recording.Store)(nil)
)

// MaxDays is the longest retention there is. A longer one could overflow the cutoff's arithmetic and land in the
// future, deleting everything; the configuration refuses it, and the job never computes past it.
const MaxDays = 36500

// batchSize bounds the sessions deleted in one transaction.
const batchSize = 500

// Job is the cleanup job. Rules, Store and Trails are required.
type Job struct {
	Store  Store
	Trails Trails
	// Rules returns the current rules; it is called at every run, so a commit applies at the next one.
	Rules func() Rules
	// Now is the clock; nil means time.Now. Tests use a fake one.
	Now func() time.Time
	// Log receives failures; nil discards.
	Log *slog.Logger
	// OnDeleted, if set, runs after a run that deleted sessions: a cluster tells its other nodes to sweep their
	// local copies of the trails (see Sweep).
	OnDeleted func(ctx context.Context)
}

func (j *Job) now() time.Time {
	if j.Now != nil {
		return j.Now()
	}
	return time.Now()
}

func (j *Job) log() *slog.Logger {
	if j.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return j.Log
}

// Run runs the job at once and then every interval until ctx ends.
func (j *Job) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		j.Tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Result is what one run did.
type Result struct {
	// Deleted lists the deleted sessions by the rule that applied: a policy key, or "" for http/options.
	Deleted map[string][]string
	Err     error
}

// Tick runs the job once.
func (j *Job) Tick(ctx context.Context) Result {
	rules := j.Rules()
	now := j.now()
	res := Result{Deleted: map[string][]string{}}
	own := slices.Sorted(maps.Keys(rules.PerPolicy))
	for _, key := range own {
		if days := rules.PerPolicy[key]; days > 0 {
			if err := j.clean(ctx, store.RetentionGroup{Policies: []string{key}}, now, days, key, &res); err != nil {
				res.Err = err
			}
		}
	}
	if rules.Global > 0 {
		if err := j.clean(ctx, store.RetentionGroup{Except: own}, now, rules.Global, "", &res); err != nil {
			res.Err = err
		}
	}
	j.audit(ctx, now, rules, res)
	if j.OnDeleted != nil {
		for _, ids := range res.Deleted {
			if len(ids) > 0 {
				j.OnDeleted(ctx)
				break
			}
		}
	}
	return res
}

func (j *Job) clean(ctx context.Context, g store.RetentionGroup, now time.Time, days int, rule string, res *Result) error {
	cutoff := now.AddDate(0, 0, -min(days, MaxDays))
	for {
		list, err := j.Store.ExpiredSessions(ctx, g, cutoff, batchSize)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			return nil
		}
		ids := make([]string, len(list))
		for i, s := range list {
			ids[i] = s.ID
		}
		deleted, err := j.Store.DeleteSessions(ctx, ids)
		if err != nil {
			return err
		}
		// The rows go first: a trail file left by a failed delete is an orphan the verifier reports, while a
		// session row without its trail would look like lost evidence.
		for _, id := range deleted {
			if err := j.Trails.Delete(id); err != nil {
				j.log().Error("retention: deleting a trail file failed", "session", id, "err", err)
				res.Err = err
			}
		}
		res.Deleted[rule] = append(res.Deleted[rule], deleted...)
		if len(deleted) == 0 {
			return nil // every candidate was put on hold meanwhile; the next run looks again
		}
	}
}

// audit records a run that deleted something or failed; quiet runs leave no event.
func (j *Job) audit(ctx context.Context, now time.Time, rules Rules, res Result) {
	total := 0
	for _, ids := range res.Deleted {
		total += len(ids)
	}
	if total == 0 && res.Err == nil {
		return
	}
	diff := map[string]any{"deleted": total, "global_days": rules.Global}
	by := map[string]any{}
	for rule, ids := range res.Deleted {
		name := rule
		if name == "" {
			name = "http/options"
		}
		by[name] = map[string]any{"count": len(ids), "sessions": firstN(ids, 100)}
	}
	diff["by_rule"] = by
	e := &model.AuditEvent{Time: now, Actor: "gatehouse", Action: "retention-cleanup", ObjectType: "connection", Outcome: "success", Diff: diff}
	if res.Err != nil {
		e.Outcome = "failure"
		diff["error"] = res.Err.Error()
	}
	if err := j.Store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		j.log().Error("retention: audit event lost", "deleted", total, "err", err)
	}
	if res.Err != nil {
		j.log().Error("retention run failed", "deleted", total, "err", res.Err)
	} else {
		j.log().Info("retention run deleted old sessions", "deleted", total)
	}
}

func firstN(ids []string, n int) []string {
	if len(ids) > n {
		return ids[:n]
	}
	return ids
}
