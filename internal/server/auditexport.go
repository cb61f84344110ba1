package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auditexport"
	"github.com/gatehouse-dev/gatehouse/internal/model"
)

// auditDrainTimeout bounds how long shutdown waits for queued audit events to reach a SIEM.
const auditDrainTimeout = 5 * time.Second

// startAuditExport sends every stored audit event to the configured SIEM destinations, if any.
func (s *Server) startAuditExport(log *slog.Logger) error {
	a := s.cfg.AuditExport
	secret, err := a.WebhookSecret()
	if err != nil {
		return err
	}
	x, err := auditexport.New(auditexport.Options{
		Syslog:     auditexport.SyslogOptions{Address: a.AuditSyslog, CAFile: a.AuditSyslogCA},
		Webhook:    auditexport.WebhookOptions{URL: a.AuditWebhook, CAFile: a.AuditWebhookCA, Secret: secret},
		QueueSize:  a.AuditQueueSize,
		Log:        log,
		Registerer: s.dp.registry,
	})
	if err != nil || x == nil {
		return err
	}
	s.store.OnAudit = func(e model.AuditEvent) { x.Export(e) }
	s.closers = append(s.closers, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, auditDrainTimeout)
		defer cancel()
		return x.Close(ctx)
	})
	log.Info("audit export enabled", "syslog", a.AuditSyslog, "webhook", a.AuditWebhook)
	return nil
}
