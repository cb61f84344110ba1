package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidateAuditExport(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, []byte("x"), 0o600)
	for _, tt := range []struct {
		name   string
		mutate func(*AuditExport)
		flag   string
	}{
		{"both destinations", func(a *AuditExport) {
			a.AuditSyslog, a.AuditSyslogCA, a.AuditWebhook, a.AuditWebhookCA, a.AuditWebhookSecret = "tcp+tls://siem:6514", ca, "https://hook/x", ca, "s"
		}, ""},
		{"plain tcp syslog", func(a *AuditExport) { a.AuditSyslog = "tcp://siem:514" }, "--audit-syslog"},
		{"udp syslog", func(a *AuditExport) { a.AuditSyslog = "udp://siem:514" }, "--audit-syslog"},
		{"syslog without port", func(a *AuditExport) { a.AuditSyslog = "tcp+tls://siem" }, "--audit-syslog"},
		{"syslog CA alone", func(a *AuditExport) { a.AuditSyslogCA = ca }, "--audit-syslog-ca"},
		{"missing syslog CA", func(a *AuditExport) { a.AuditSyslog, a.AuditSyslogCA = "tcp+tls://siem:6514", "/nonexistent.pem" }, "--audit-syslog-ca"},
		{"http webhook", func(a *AuditExport) { a.AuditWebhook = "http://hook/x" }, "--audit-webhook"},
		{"webhook with userinfo", func(a *AuditExport) { a.AuditWebhook = "https://u:p@hook/x" }, "--audit-webhook"},
		{"secret without webhook", func(a *AuditExport) { a.AuditWebhookSecret = "s" }, "--audit-webhook-secret"},
		{"secret and secret file", func(a *AuditExport) {
			a.AuditWebhook, a.AuditWebhookSecret, a.AuditWebhookSecretFile = "https://hook/x", "s", ca
		}, "--audit-webhook-secret"},
		{"negative queue", func(a *AuditExport) { a.AuditQueueSize = -1 }, "--audit-queue-size"},
		{"huge queue", func(a *AuditExport) { a.AuditQueueSize = 2_000_000 }, "--audit-queue-size"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{DataDir: "d", APIListen: ":8443", ProxyListen: ":20080", TokenTTL: 30 * time.Minute}
			tt.mutate(&c.AuditExport)
			err := c.Validate()
			if tt.flag == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.flag) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tt.flag)
			}
		})
	}
}

func TestAuditWebhookSecret(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(file, []byte("  from-file\n"), 0o600)
	a := AuditExport{AuditWebhookSecretFile: file}
	if b, err := a.WebhookSecret(); err != nil || string(b) != "from-file" {
		t.Errorf("from file: %q %v", b, err)
	}
	a = AuditExport{AuditWebhookSecret: "from-flag"}
	if b, err := a.WebhookSecret(); err != nil || string(b) != "from-flag" {
		t.Errorf("from flag: %q %v", b, err)
	}
	c := Config{AuditExport: a}
	m := c.Masked()
	if m["audit-webhook-secret"] != "********" {
		t.Errorf("config dump shows the webhook secret: %v", m["audit-webhook-secret"])
	}
}
