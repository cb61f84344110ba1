package directory

import (
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func TestPasswordPolicyEntropy(t *testing.T) {
	tests := []struct {
		policy       PasswordPolicy
		wantEntropy  int
		wantStrength string
	}{
		{PasswordPolicy{MinLength: 16, UseLowerCase: true, UseUpperCase: true, UseNumbers: true, UseSpecialCharacters: true}, 105, "STRONG"},
		{PasswordPolicy{MinLength: 10, UseLowerCase: true, UseNumbers: true}, 51, "MEDIUM"},
		{PasswordPolicy{MinLength: 8, UseNumbers: true}, 26, "WEAK"},
		{PasswordPolicy{MinLength: 8}, 0, "WEAK"},
	}
	for _, tc := range tests {
		p := tc.policy
		p.compute()
		if p.PasswordEntropy != tc.wantEntropy || p.PasswordStrength != tc.wantStrength {
			t.Errorf("%+v: entropy %d %s, want %d %s", tc.policy, p.PasswordEntropy, p.PasswordStrength, tc.wantEntropy, tc.wantStrength)
		}
	}
}

func TestMatchesUsername(t *testing.T) {
	src := &Source{Settings: Settings{UsernamePattern: []string{"*@corp.example.com", "svc-?"}}}
	for name, want := range map[string]bool{
		"alice@corp.example.com": true, "ALICE@Corp.Example.com": true, "alice@example.com": false,
		"svc-1": true, "svc-12": false, "": false,
	} {
		if got := src.MatchesUsername(name); got != want {
			t.Errorf("MatchesUsername(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestNormalizeDN(t *testing.T) {
	for in, want := range map[string]string{
		"CN=Ops, OU=Groups,DC=Example,DC=org": "cn=ops,ou=groups,dc=example,dc=org",
		"cn = a\\, b ,dc=x":                   "cn=a\\, b,dc=x",
	} {
		if got := store.NormalizeDN(in); got != want {
			t.Errorf("NormalizeDN(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSecretsSplit: secrets leave the stored config, come back from the sealed map, and Redact drops them.
func TestSecretsSplit(t *testing.T) {
	pw := "bind-secret"
	src := &Source{ID: "s1", Name: "corp", Settings: Settings{Connection: Connection{Type: TypeLDAP, LDAPBindPassword: &pw}}}
	st := src.ToStored()
	if string(st.Config) == "" || strings.Contains(string(st.Config), pw) || st.Secrets["ldap_bind_password"] != pw {
		t.Fatalf("stored config %s, secrets %v", st.Config, st.Secrets)
	}
	back, err := FromStored(st)
	if err != nil || back.Connection.LDAPBindPassword == nil || *back.Connection.LDAPBindPassword != pw {
		t.Fatalf("round trip lost the secret: %v", err)
	}
	upd := &Source{Settings: Settings{Connection: Connection{Type: TypeLDAP}}}
	upd.KeepSecrets(back)
	if upd.Connection.LDAPBindPassword == nil || *upd.Connection.LDAPBindPassword != pw {
		t.Error("an update without the secret did not keep it")
	}
	back.Redact()
	if back.Connection.LDAPBindPassword != nil {
		t.Error("Redact kept the secret")
	}
}
