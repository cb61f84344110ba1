package store_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/google/go-cmp/cmp"
)

func TestListPagingSortFilter(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		s := e.S
		for i := range 7 {
			mustUser(t, s, fmt.Sprintf("user%d", i))
		}
		// Names with LIKE wildcards: a filter of "%" or "_" must match them literally, not everything.
		for _, n := range []string{"a%b", "a_b", "axb", `a\b`} {
			mustUser(t, s, n)
		}
		usernames := func(list []*model.User) []string {
			out := []string{}
			for _, u := range list {
				out = append(out, u.Username)
			}
			return out
		}
		tests := []struct {
			name      string
			opts      store.ListOptions
			want      []string
			wantTotal int
		}{
			// Pages stay among plain names, so the order does not depend on how a collation sorts punctuation.
			{"first page", store.ListOptions{Limit: 3, Filter: "user"}, []string{"user0", "user1", "user2"}, 7},
			{"second page", store.ListOptions{Limit: 3, Offset: 3, Filter: "user"}, []string{"user3", "user4", "user5"}, 7},
			{"default limit", store.ListOptions{}, nil, 11},
			{"past the end", store.ListOptions{Offset: 50}, []string{}, 11},
			{"desc", store.ListOptions{Limit: 2, SortDir: "desc"}, []string{"user6", "user5"}, 11},
			{"sort by email desc", store.ListOptions{Limit: 1, SortKey: "email", SortDir: "DESC"}, []string{"user6"}, 11},
			{"filter substring, case-insensitive", store.ListOptions{Filter: "USER1"}, []string{"user1"}, 1},
			{"filter matches full name", store.ListOptions{Filter: "full user2"}, []string{"user2"}, 1},
			{"percent is literal", store.ListOptions{Filter: "%"}, []string{"a%b"}, 1},
			{"underscore is literal", store.ListOptions{Filter: "a_"}, []string{"a_b"}, 1},
			{"backslash is literal", store.ListOptions{Filter: `\`}, []string{`a\b`}, 1},
			{"no match", store.ListOptions{Filter: "zzz"}, []string{}, 0},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, total, err := s.ListUsers(ctx, tt.opts)
				if err != nil {
					t.Fatal(err)
				}
				if tt.want == nil {
					if len(got) != tt.wantTotal {
						t.Errorf("got %d items, want all %d", len(got), tt.wantTotal)
					}
				} else if diff := cmp.Diff(tt.want, usernames(got)); diff != "" {
					t.Errorf("page (-want +got):\n%s", diff)
				}
				if total != tt.wantTotal {
					t.Errorf("count = %d, want %d", total, tt.wantTotal)
				}
			})
		}
		for _, bad := range []store.ListOptions{{SortKey: "password_hash"}, {SortDir: "sideways"}, {Offset: -1}} {
			if _, _, err := s.ListUsers(ctx, bad); !errors.Is(err, store.ErrBadQuery) {
				t.Errorf("ListUsers(%+v): %v, want ErrBadQuery", bad, err)
			}
		}
		mustRole(t, s, "50%-off")
		mustRole(t, s, "500-off")
		roles, total, err := s.ListRoles(ctx, store.ListOptions{Filter: "50%"})
		if err != nil || total != 1 || len(roles) != 1 || roles[0].Name != "50%-off" {
			t.Errorf("roles filtered by 50%%: %v, %d, %v", names(roles), total, err)
		}
	})
}

// plantedSecrets creates one object of every kind that holds a secret and returns the secrets in clear.
func plantedSecrets(t *testing.T, s *store.Store) (secrets []string, cred *model.ProxyCredential, client *model.APIClient) {
	t.Helper()
	keyPEM := newKeyPEM(t)
	tokenTarget := newTarget("tok")
	tokenTarget.Credential = model.TargetCredential{Type: "token", BearerToken: "PLANT-bearer-5a1c"}
	basicTarget := newTarget("basic")
	basicTarget.Credential = model.TargetCredential{Type: "basicauth", BasicAuthUsername: "svc", BasicAuthPassword: "PLANT-basic-8d2e"}
	headerTarget := newTarget("header")
	headerTarget.Credential = model.TargetCredential{Type: "header", HeaderName: "X-Api-Key", HeaderValue: "PLANT-header-3f7b"}
	certTarget := newTarget("cert")
	certTarget.Credential = model.TargetCredential{Type: "certificate", Certificate: "-----BEGIN CERTIFICATE-----\n...", PrivateKey: keyPEM}
	for _, tg := range []*model.Target{tokenTarget, basicTarget, headerTarget, certTarget} {
		if err := s.CreateTarget(ctx, tg, "tester"); err != nil {
			t.Fatal(err)
		}
	}
	client = &model.APIClient{Name: "ci", Secret: "PLANT-client-secret-9b4a", OAuthClientID: "oauth-ci", OAuthClientSecret: "PLANT-oauth-secret-2c6d"}
	if err := s.CreateAPIClient(ctx, client, "tester"); err != nil {
		t.Fatal(err)
	}
	u := mustUser(t, s, "alice")
	cred = mustCredential(t, s, u, tokenTarget, "laptop", "ghp_PLANT-proxy-secret-7e0f")
	if err := s.SaveRefreshToken(ctx, "PLANT-refresh-1d9c", store.RefreshToken{PrincipalKind: "user", PrincipalID: u.ID,
		Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// The base64 body of the key, which is what would show in any encoding of the PEM.
	keyBody := strings.Split(keyPEM, "\n")[1]
	return []string{"PLANT-bearer-5a1c", "PLANT-basic-8d2e", "PLANT-header-3f7b", keyBody, "PLANT-client-secret-9b4a",
		"PLANT-oauth-secret-2c6d", "PLANT-proxy-secret-7e0f", "PLANT-refresh-1d9c"}, cred, client
}

func newKeyPEM(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// TestSealedColumnsHoldNoPlaintext reads every table through a separate connection and checks that no secret
// handed to the store is there in clear, while the store itself still returns each one.
func TestSealedColumnsHoldNoPlaintext(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		planted, cred, client := plantedSecrets(t, e.S)
		var dump strings.Builder
		for _, table := range []string{"users", "roles", "user_roles", "api_clients", "api_client_roles", "targets",
			"target_roles", "proxy_credentials", "settings", "refresh_tokens", "audit_events"} {
			dump.WriteString(e.dumpTable(t, table))
		}
		// The dump must be real: it shows non-secret values written beside the secrets.
		for _, visible := range []string{"oauth-ci", "X-Api-Key", "laptop", "alice"} {
			if !strings.Contains(dump.String(), visible) {
				t.Fatalf("dump lacks the plain value %q; the scan would prove nothing", visible)
			}
		}
		for _, secret := range planted {
			if strings.Contains(dump.String(), secret) {
				t.Errorf("secret %q is stored in clear", secret)
			}
		}
		got, err := e.S.Credential(ctx, cred.ID)
		if err != nil || got.Secret != cred.Secret {
			t.Errorf("credential secret does not open: %v", err)
		}
		gotClient, err := e.S.APIClient(ctx, client.ID)
		if err != nil || gotClient.Secret != client.Secret || gotClient.OAuthClientSecret != client.OAuthClientSecret {
			t.Errorf("api client secrets do not open: %v", err)
		}
		all, err := e.S.AllTargets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		opened := map[string]string{}
		for _, tg := range all {
			c := tg.Credential
			opened[tg.Name] = c.BearerToken + c.BasicAuthPassword + c.HeaderValue + c.PrivateKey
		}
		if opened["tok"] != "PLANT-bearer-5a1c" || opened["basic"] != "PLANT-basic-8d2e" || opened["header"] != "PLANT-header-3f7b" ||
			!strings.Contains(opened["cert"], planted[3]) {
			t.Errorf("target secrets do not open: %v", opened)
		}
	})
}

// TestSecretIndex pins the keyed-hash lookup: a credential is found by its secret without opening every row, the
// index column is the keyed hash (not the secret) and the hash depends on the purpose.
func TestSecretIndex(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		_, cred, client := plantedSecrets(t, e.S)
		got, err := e.S.CredentialBySecret(ctx, cred.Secret)
		if err != nil || got.ID != cred.ID {
			t.Fatalf("CredentialBySecret = %v, %v", got, err)
		}
		if _, err := e.S.CredentialBySecret(ctx, cred.Secret+"x"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("wrong secret: %v, want ErrNotExist", err)
		}
		// A client secret is indexed under another purpose, so it cannot be used as a proxy secret.
		if _, err := e.S.CredentialBySecret(ctx, client.Secret); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("api client secret found a proxy credential: %v", err)
		}
		var idx string
		if err := e.Raw.QueryRow(e.bind(`SELECT secret_index FROM proxy_credentials WHERE id = ?`), cred.ID).Scan(&idx); err != nil {
			t.Fatal(err)
		}
		if idx != e.S.SecretIndex(store.IndexProxySecret, cred.Secret) {
			t.Errorf("secret_index %q is not the keyed hash of the secret", idx)
		}
		if idx == e.S.SecretIndex(store.IndexAPIClientSecret, cred.Secret) {
			t.Errorf("index does not depend on purpose")
		}
		if idx != e.Keys.Index(store.IndexProxySecret, []byte(cred.Secret)) {
			t.Errorf("store index differs from the keyring's")
		}
	})
}

// TestSealedValueBoundToRow copies a sealed value to another row and to another field: neither may open, since an
// attacker with write access to the database could otherwise make one secret appear in place of another.
func TestSealedValueBoundToRow(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		s := e.S
		u, tg := mustUser(t, s, "alice"), mustTarget(t, s, "kube")
		a := mustCredential(t, s, u, tg, "a", "ghp_secret_a")
		b := mustCredential(t, s, u, tg, "b", "ghp_secret_b")
		e.exec(t, `UPDATE proxy_credentials SET secret_sealed = (SELECT secret_sealed FROM proxy_credentials WHERE id = ?) WHERE id = ?`, a.ID, b.ID)
		if _, err := s.Credential(ctx, b.ID); err == nil || errors.Is(err, store.ErrNotExist) {
			t.Errorf("credential with another row's sealed secret: %v, want a decryption error", err)
		}
		if got, err := s.Credential(ctx, a.ID); err != nil || got.Secret != "ghp_secret_a" {
			t.Errorf("source row no longer opens: %v", err)
		}

		c := &model.APIClient{Name: "ci", Secret: "cs", OAuthClientID: "oid", OAuthClientSecret: "ocs"}
		if err := s.CreateAPIClient(ctx, c, "x"); err != nil {
			t.Fatal(err)
		}
		e.exec(t, `UPDATE api_clients SET oauth_client_secret_sealed = secret_sealed WHERE id = ?`, c.ID)
		if _, err := s.APIClient(ctx, c.ID); err == nil {
			t.Errorf("api client with its secret copied into the oauth secret field opened")
		}

		other := mustTarget(t, s, "other")
		e.exec(t, `UPDATE targets SET credential_sealed = (SELECT credential_sealed FROM targets WHERE id = ?) WHERE id = ?`, tg.ID, other.ID)
		if _, err := s.Target(ctx, other.ID); err == nil {
			t.Errorf("target with another target's sealed credential opened")
		}
	})
}

func TestRefreshTokens(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		s := e.S
		now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		s.Now = func() time.Time { return now }
		rt := store.RefreshToken{PrincipalKind: "user", PrincipalID: "u1", Expires: now.Add(time.Hour)}
		for _, tok := range []string{"tok-1", "tok-2", "tok-3", "tok-4"} {
			if err := s.SaveRefreshToken(ctx, tok, rt); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SaveRefreshToken(ctx, "tok-other", store.RefreshToken{PrincipalKind: "api-client", PrincipalID: "c1", Expires: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		got, err := s.ConsumeRefreshToken(ctx, "tok-1")
		if err != nil {
			t.Fatal(err)
		}
		want := rt
		want.Created = now // when it was saved, for the user's token cutoff
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("consumed (-want +got):\n%s", diff)
		}
		if _, err := s.ConsumeRefreshToken(ctx, "tok-1"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("second use: %v, want ErrNotExist", err)
		}
		if _, err := s.ConsumeRefreshToken(ctx, "never-issued"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("unknown token: %v, want ErrNotExist", err)
		}

		now = now.Add(2 * time.Hour)
		if _, err := s.ConsumeRefreshToken(ctx, "tok-2"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("expired token: %v, want ErrNotExist", err)
		}
		if err := s.PurgeRefreshTokens(ctx); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := e.Raw.QueryRow(`SELECT COUNT(*) FROM refresh_tokens`).Scan(&n); err != nil || n != 0 {
			t.Errorf("after purge %d tokens remain (%v)", n, err)
		}

		now = now.Add(-2 * time.Hour)
		for _, tok := range []string{"tok-5", "tok-6"} {
			if err := s.SaveRefreshToken(ctx, tok, rt); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SaveRefreshToken(ctx, "tok-7", store.RefreshToken{PrincipalKind: "api-client", PrincipalID: "u1", Expires: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeletePrincipalRefreshTokens(ctx, "user", "u1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ConsumeRefreshToken(ctx, "tok-5"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("revoked token: %v, want ErrNotExist", err)
		}
		if _, err := s.ConsumeRefreshToken(ctx, "tok-7"); err != nil {
			t.Errorf("another principal kind's token was revoked too: %v", err)
		}
	})
}
