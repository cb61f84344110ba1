package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCredentialsForAnotherUserAndRotate: a credential made for someone else is shown without its secret (only
// its owner may read it), and rotation gives the owner a new secret.
func TestCredentialsForAnotherUserAndRotate(t *testing.T) {
	h := newHarness(t)
	h.loginAdmin()
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(targetSecret), 0o600)
	h.ok("", "targets", "create", "--name", "echo", "--host", "echo.example.com", "--token-file", tokenFile)
	h.ok("Bob-pass-12345\n", "users", "create", "--username", "bob", "--password-stdin")

	var cred map[string]any
	h.jsonOut(&cred, "credentials", "--user", "bob", "create", "--target", "echo", "--name", "bobs")
	id, _ := cred["id"].(string)
	// The creator is shown the new secret once, to hand it over to bob.
	if s, _ := cred["secret"].(string); !strings.HasPrefix(s, "ghp_") || id == "" {
		t.Fatalf("a credential created for bob does not show its creator the secret to hand over: %v", cred)
	}
	// The creator's handover lasts until the credential's first change: after a rotation only bob reads it.
	h.ok("", "credentials", "--user", "bob", "rotate", id)
	h.fails(1, []string{"only the credential's owner"}, "", "credentials", "--user", "bob", "secret", id)

	var own map[string]any
	h.jsonOut(&own, "credentials", "create", "--target", "echo", "--name", "mine")
	before, _ := own["secret"].(string)
	out := h.ok("", "credentials", "rotate", "mine")
	if strings.Contains(out, "ghp_") {
		t.Errorf("rotate printed a secret:\n%s", out)
	}
	if after := strings.TrimSpace(h.ok("", "credentials", "secret", "mine")); !strings.HasPrefix(after, "ghp_") || after == before {
		t.Errorf("secret after rotation %q, before %q", after, before)
	}
}
