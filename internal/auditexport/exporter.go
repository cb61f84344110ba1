// Package auditexport sends the store's audit events to a SIEM as they are written: RFC 5424 syslog over TLS and
// a JSON webhook. Each destination has a bounded in-memory queue that drops its oldest event when full and a worker
// that retries with backoff, so a slow or absent SIEM never holds up the request that wrote the event.
package auditexport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/prometheus/client_golang/prometheus"
)

// sink delivers one event to one destination.
type sink interface {
	// name labels the sink in logs and metrics: "syslog" or "webhook".
	name() string
	// send delivers e; an error wrapping errPermanent means a retry cannot help.
	send(ctx context.Context, e model.AuditEvent) error
	close() error
}

// errPermanent marks a delivery failure that retrying cannot fix (the webhook refused the event with a 4xx).
var errPermanent = errors.New("permanent failure")

// Options configure New. A destination that is empty is not exported to.
type Options struct {
	Syslog  SyslogOptions
	Webhook WebhookOptions
	// QueueSize is each destination's queue length; 0 means 10000.
	QueueSize int
	// MinBackoff and MaxBackoff bound the wait between retries, doubling from Min up to Max; 0 means 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// Log receives delivery failures and drops; nil discards.
	Log *slog.Logger
	// Registerer, if set, gets the export metrics.
	Registerer prometheus.Registerer
}

// Exporter fans audit events out to the configured destinations. Export never blocks.
type Exporter struct {
	workers []*worker
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	log     *slog.Logger
}

// metrics are shared by the workers and labelled by sink.
type metrics struct {
	events  *prometheus.CounterVec // result: sent, dropped, failed
	retries *prometheus.CounterVec
}

// New starts a worker for each configured destination; with none it returns nil, whose Export does nothing.
func New(opts Options) (*Exporter, error) {
	var sinks []sink
	if opts.Syslog.Address != "" {
		s, err := newSyslogSink(opts.Syslog)
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, s)
	}
	if opts.Webhook.URL != "" {
		s, err := newWebhookSink(opts.Webhook)
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, s)
	}
	if len(sinks) == 0 {
		return nil, nil
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 10000
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 500 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(30*time.Second, opts.MinBackoff)
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "gatehouse", Subsystem: "audit_export", Name: "events_total",
			Help: "Audit events per export destination by result: sent, dropped (queue full) or failed (refused for good)."}, []string{"sink", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "gatehouse", Subsystem: "audit_export", Name: "retries_total",
			Help: "Failed delivery attempts that were retried."}, []string{"sink"}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	x := &Exporter{cancel: cancel, log: log}
	for _, s := range sinks {
		w := &worker{sink: s, q: newQueue(opts.QueueSize), m: m, log: log.With("component", "audit-export", "sink", s.name()),
			min: opts.MinBackoff, max: opts.MaxBackoff, sleep: sleepCtx}
		x.workers = append(x.workers, w)
		if opts.Registerer != nil {
			q := w.q
			opts.Registerer.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "gatehouse", Subsystem: "audit_export",
				Name: "queue_length", Help: "Audit events waiting for delivery.", ConstLabels: prometheus.Labels{"sink": s.name()}},
				func() float64 { return float64(q.len()) }))
		}
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(m.events, m.retries)
	}
	for _, w := range x.workers {
		x.wg.Add(1)
		go func() {
			defer x.wg.Done()
			w.run(ctx)
		}()
	}
	return x, nil
}

// Export queues e for every destination. It is safe to call on a nil Exporter and from any goroutine.
func (x *Exporter) Export(e model.AuditEvent) {
	if x == nil {
		return
	}
	for _, w := range x.workers {
		w.enqueue(e)
	}
}

// Close delivers what is queued until ctx ends, then stops the workers and closes the connections. Events still
// queued then are lost, and the log says how many.
func (x *Exporter) Close(ctx context.Context) error {
	if x == nil {
		return nil
	}
	for _, w := range x.workers {
		w.draining.Store(true)
		w.q.wake()
	}
	done := make(chan struct{})
	go func() { x.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		x.cancel()
		<-done
	}
	x.cancel()
	var errs []error
	for _, w := range x.workers {
		if n := w.q.len(); n > 0 {
			w.log.Error("audit events not exported before shutdown", "count", n)
		}
		errs = append(errs, w.sink.close())
	}
	return errors.Join(errs...)
}

// worker delivers one destination's queue in order.
type worker struct {
	sink     sink
	q        *queue
	m        *metrics
	log      *slog.Logger
	min, max time.Duration
	// sleep waits d or until ctx ends (false); tests replace it so no test waits on a clock.
	sleep    func(ctx context.Context, d time.Duration) bool
	draining atomic.Bool
	dropped  atomic.Int64
}

func (w *worker) enqueue(e model.AuditEvent) {
	if !w.q.push(e) {
		return
	}
	w.m.events.WithLabelValues(w.sink.name(), "dropped").Inc()
	// One line when the queue first overflows, then one per thousand drops, so a long outage does not flood the log.
	if n := w.dropped.Add(1); n == 1 || n%1000 == 0 {
		w.log.Error("audit export queue full: dropped the oldest event", "dropped_total", n, "queue_size", len(w.q.items))
	}
}

func (w *worker) run(ctx context.Context) {
	for {
		e, ok := w.q.tryPop()
		if !ok {
			if w.draining.Load() {
				return
			}
			select {
			case <-w.q.ready:
				continue
			case <-ctx.Done():
				return
			}
		}
		if !w.deliver(ctx, e) {
			return
		}
	}
}

// deliver sends e until it is accepted or refused for good; false when ctx ended first.
func (w *worker) deliver(ctx context.Context, e model.AuditEvent) bool {
	wait := w.min
	for attempt := 1; ; attempt++ {
		err := w.sink.send(ctx, e)
		switch {
		case err == nil:
			w.m.events.WithLabelValues(w.sink.name(), "sent").Inc()
			if attempt > 1 {
				w.log.Info("audit export recovered", "event_id", e.ID, "attempts", attempt)
			}
			return true
		case errors.Is(err, errPermanent):
			w.m.events.WithLabelValues(w.sink.name(), "failed").Inc()
			w.log.Error("audit event refused by the destination; not retried", "event_id", e.ID, "action", e.Action, "err", err)
			return true
		case ctx.Err() != nil:
			return false
		}
		w.m.retries.WithLabelValues(w.sink.name()).Inc()
		if attempt == 1 || attempt%10 == 0 {
			w.log.Warn("audit export failed; retrying", "event_id", e.ID, "attempt", attempt, "retry_in", wait.String(), "err", err)
		}
		if !w.sleep(ctx, wait) {
			return false
		}
		wait = min(2*wait, w.max)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// permanent wraps err as a failure that retrying cannot fix.
func permanent(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errPermanent, fmt.Sprintf(format, args...))
}
