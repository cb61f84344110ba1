package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/cli"
)

// TestAuditExportFlags: the audit export settings come from flags and env, show in `config dump` with the secret
// masked, and a bad value stops serve with the flag named.
func TestAuditExportFlags(t *testing.T) {
	t.Setenv("GATEHOUSE_AUDIT_WEBHOOK_SECRET", "hook-secret-from-env")
	var out, errb bytes.Buffer
	code := cli.RunWithStdin(context.Background(), []string{"config", "dump", "--data-dir", t.TempDir(),
		"--audit-syslog", "tcp+tls://siem.example:6514", "--audit-webhook", "https://hooks.example/gatehouse"}, strings.NewReader(""), &out, &errb)
	if code != 0 {
		t.Fatalf("config dump: %d %s", code, errb.String())
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["audit-syslog"] != "tcp+tls://siem.example:6514" || m["audit-webhook"] != "https://hooks.example/gatehouse" ||
		m["audit-webhook-secret"] != "********" || m["audit-queue-size"] != float64(10000) {
		t.Errorf("config dump: %v", m)
	}
	if strings.Contains(out.String()+errb.String(), "hook-secret-from-env") {
		t.Error("config dump shows the webhook secret")
	}

	out.Reset()
	errb.Reset()
	code = cli.RunWithStdin(context.Background(), []string{"serve", "--data-dir", t.TempDir(), "--api-listen", "127.0.0.1:0",
		"--proxy-listen", "127.0.0.1:0", "--audit-syslog", "udp://siem.example:514"}, strings.NewReader(""), &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "--audit-syslog") || !strings.Contains(errb.String(), "tcp+tls") {
		t.Errorf("serve with a udp collector: exit %d\n%s", code, errb.String())
	}
}
