package config

import (
	"fmt"
	"os"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/auditexport"
)

// AuditExport is where audit events are sent besides the store: a syslog collector over TLS and a webhook.
type AuditExport struct {
	AuditSyslog            string `name:"audit-syslog" env:"GATEHOUSE_AUDIT_SYSLOG" default:"" placeholder:"tcp+tls://HOST:PORT" help:"Send audit events to a syslog collector (SIEM) as RFC 5424 over TLS with octet-counted framing; empty disables."`
	AuditSyslogCA          string `name:"audit-syslog-ca" env:"GATEHOUSE_AUDIT_SYSLOG_CA" default:"" type:"path" help:"PEM CA bundle the syslog collector's certificate must chain to (default: the system roots)."`
	AuditWebhook           string `name:"audit-webhook" env:"GATEHOUSE_AUDIT_WEBHOOK" default:"" placeholder:"https://..." help:"POST each audit event as JSON to this https URL; empty disables."`
	AuditWebhookCA         string `name:"audit-webhook-ca" env:"GATEHOUSE_AUDIT_WEBHOOK_CA" default:"" type:"path" help:"PEM CA bundle the webhook receiver's certificate must chain to (default: the system roots)."`
	AuditWebhookSecret     string `name:"audit-webhook-secret" env:"GATEHOUSE_AUDIT_WEBHOOK_SECRET" default:"" help:"Shared secret that signs each webhook POST (X-Gatehouse-Signature, HMAC-SHA256); prefer the env variable or --audit-webhook-secret-file." json:"-"`
	AuditWebhookSecretFile string `name:"audit-webhook-secret-file" env:"GATEHOUSE_AUDIT_WEBHOOK_SECRET_FILE" default:"" type:"path" help:"File holding the webhook signing secret."`
	AuditQueueSize         int    `name:"audit-queue-size" env:"GATEHOUSE_AUDIT_QUEUE_SIZE" default:"10000" help:"Audit events held per export destination while it is slow or down; beyond it the oldest are dropped and counted (0: 10000)."`
}

// validate adds the audit export's errors through bad.
func (a *AuditExport) validate(bad func(flag, msg string)) {
	if a.AuditSyslog != "" {
		if _, err := auditexport.ParseSyslogAddress(a.AuditSyslog); err != nil {
			bad("audit-syslog", err.Error())
		}
	} else if a.AuditSyslogCA != "" {
		bad("audit-syslog-ca", "needs --audit-syslog")
	}
	if a.AuditWebhook != "" {
		if _, err := auditexport.ParseWebhookURL(a.AuditWebhook); err != nil {
			bad("audit-webhook", err.Error())
		}
	} else {
		for flag, v := range map[string]string{"audit-webhook-ca": a.AuditWebhookCA, "audit-webhook-secret": a.AuditWebhookSecret,
			"audit-webhook-secret-file": a.AuditWebhookSecretFile} {
			if v != "" {
				bad(flag, "needs --audit-webhook")
			}
		}
	}
	if a.AuditWebhookSecret != "" && a.AuditWebhookSecretFile != "" {
		bad("audit-webhook-secret", "give --audit-webhook-secret or --audit-webhook-secret-file, not both")
	}
	for flag, path := range map[string]string{"audit-syslog-ca": a.AuditSyslogCA, "audit-webhook-ca": a.AuditWebhookCA,
		"audit-webhook-secret-file": a.AuditWebhookSecretFile} {
		if path != "" {
			if _, err := os.Stat(path); err != nil {
				bad(flag, err.Error())
			}
		}
	}
	if a.AuditQueueSize < 0 || a.AuditQueueSize > 1_000_000 {
		bad("audit-queue-size", "must be between 1 and 1000000 (0 for the default, 10000)")
	}
}

// WebhookSecret is the signing secret from the flag or its file; nil when neither is set.
func (a *AuditExport) WebhookSecret() ([]byte, error) {
	if a.AuditWebhookSecretFile == "" {
		if a.AuditWebhookSecret == "" {
			return nil, nil
		}
		return []byte(a.AuditWebhookSecret), nil
	}
	b, err := os.ReadFile(a.AuditWebhookSecretFile)
	if err != nil {
		return nil, fmt.Errorf("--audit-webhook-secret-file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil, fmt.Errorf("--audit-webhook-secret-file: %s is empty", a.AuditWebhookSecretFile)
	}
	return []byte(s), nil
}

// masked adds the audit export settings to a `config dump` map, the secret masked.
func (a *AuditExport) masked(m map[string]any) {
	secret := ""
	if a.AuditWebhookSecret != "" {
		secret = "********"
	}
	m["audit-syslog"], m["audit-syslog-ca"], m["audit-webhook"], m["audit-webhook-ca"] = a.AuditSyslog, a.AuditSyslogCA, a.AuditWebhook, a.AuditWebhookCA
	m["audit-webhook-secret"], m["audit-webhook-secret-file"], m["audit-queue-size"] = secret, a.AuditWebhookSecretFile, a.AuditQueueSize
}
