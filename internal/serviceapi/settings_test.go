package serviceapi_test

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
	"github.com/google/go-cmp/cmp"
)

type settingsView struct {
	IdleSessionTimeout      int      `json:"idle_session_timeout"`
	MaxSessionLifetime      int      `json:"max_session_lifetime"`
	SessionCooldown         int      `json:"session_cooldown"`
	ReauthorizationInterval int      `json:"reauthorization_interval"`
	PublicAddresses         []string `json:"public_addresses"`
	MaxCredentialValidity   int      `json:"max_credential_validity"`
	RecordingBodyLimit      int      `json:"recording_body_limit"`
	RecordingRedactHeaders  []string `json:"recording_redact_headers"`
}

func TestSettings(t *testing.T) {
	forEachDB(t, func(t *testing.T, gh *testserver.Instance) {
		adm := gh.AdminToken()
		var s settingsView
		gh.JSON("GET", proxyPath+"/settings", adm, nil, http.StatusOK, &s)
		want := settingsView{IdleSessionTimeout: 900, MaxSessionLifetime: 8 * 3600, SessionCooldown: 300, ReauthorizationInterval: 60,
			PublicAddresses: []string{}, MaxCredentialValidity: 30 * 24 * 3600, RecordingBodyLimit: 64 * 1024, RecordingRedactHeaders: []string{}}
		if d := cmp.Diff(want, s); d != "" {
			t.Errorf("default settings (-want +got):\n%s", d)
		}

		// A PUT names only what changes; the rest is kept, and the change survives a restart.
		gh.JSON("PUT", proxyPath+"/settings", adm, map[string]any{"idle_session_timeout": 60, "public_addresses": []string{"proxy.example.com:3128"}}, http.StatusOK, &s)
		want.IdleSessionTimeout, want.PublicAddresses = 60, []string{"proxy.example.com:3128"}
		if d := cmp.Diff(want, s); d != "" {
			t.Errorf("after PUT (-want +got):\n%s", d)
		}
		gh.Restart()
		adm = gh.AdminToken()
		gh.JSON("GET", proxyPath+"/settings", adm, nil, http.StatusOK, &s)
		if d := cmp.Diff(want, s); d != "" {
			t.Errorf("after restart (-want +got):\n%s", d)
		}
		var conf struct {
			Addresses []string `json:"addresses"`
		}
		gh.JSON("GET", proxyPath+"/conf", adm, nil, http.StatusOK, &conf)
		if !cmp.Equal(conf.Addresses, []string{"proxy.example.com:3128"}) {
			t.Errorf("conf addresses %v do not follow public_addresses", conf.Addresses)
		}

		before := mustGet(t, gh, proxyPath+"/settings", adm)
		var cases []badCase
		for _, c := range []struct {
			field string
			bad   []int
		}{
			{"idle_session_timeout", []int{9, 7*24*3600 + 1}},
			{"max_session_lifetime", []int{59, 30*24*3600 + 1}},
			{"session_cooldown", []int{-1, 7*24*3600 + 1}},
			{"reauthorization_interval", []int{0, 24*3600 + 1}},
			{"max_credential_validity", []int{59, 366*24*3600 + 1}},
			{"recording_body_limit", []int{-1, 64<<20 + 1}},
		} {
			for _, v := range c.bad {
				cases = append(cases, badCase{fmt.Sprintf("%s=%d", c.field, v), map[string]any{"session_cooldown": 1, c.field: v}, 400, c.field})
			}
			cases = append(cases, badCase{c.field + " wrong type", map[string]any{c.field: "5m"}, 400, c.field})
		}
		cases = append(cases,
			badCase{"empty public address", map[string]any{"public_addresses": []string{"a:1", ""}}, 400, "public_addresses[1]"},
			badCase{"public address without port", map[string]any{"public_addresses": []string{"proxy.example.com"}}, 400, "public_addresses[0]"},
			badCase{"public address with bad port", map[string]any{"public_addresses": []string{"proxy.example.com:0"}}, 400, "public_addresses[0]"},
			badCase{"public address with a path", map[string]any{"public_addresses": []string{"a:1", "x/y:80"}}, 400, "public_addresses[1]"},
			badCase{"public_addresses wrong type", map[string]any{"public_addresses": "a:1"}, 400, "public_addresses"},
			badCase{"unknown field", map[string]any{"idle_timeout": 5}, 400, "idle_timeout"},
			badCase{"malformed JSON", `{"idle_session_timeout":}`, 400, ""},
		)
		checkBad(t, gh, "PUT", proxyPath+"/settings", adm, cases)
		if after := mustGet(t, gh, proxyPath+"/settings", adm); string(after) != string(before) {
			t.Errorf("a refused PUT changed the settings:\nbefore %s\nafter  %s", before, after)
		}
	})
}

func TestConfAndStatus(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	b := mustGet(t, gh, proxyPath+"/conf", adm)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"addresses", "ca_certificate", "ca_certificate_chain"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("conf lacks %q: %s", k, b)
		}
	}
	var conf struct {
		Addresses []string `json:"addresses"`
		CA        struct {
			Subject           string    `json:"subject"`
			Issuer            string    `json:"issuer"`
			Serial            string    `json:"serial"`
			NotBefore         time.Time `json:"not_before"`
			NotAfter          time.Time `json:"not_after"`
			FingerprintSHA1   string    `json:"fingerprint_sha1"`
			FingerprintSHA256 string    `json:"fingerprint_sha256"`
		} `json:"ca_certificate"`
		Chain string `json:"ca_certificate_chain"`
	}
	json.Unmarshal(b, &conf)
	// Without public addresses, conf offers the proxy's port on the host the caller used.
	if len(conf.Addresses) != 1 || !strings.HasPrefix(conf.Addresses[0], "127.0.0.1:") {
		t.Errorf("addresses %v", conf.Addresses)
	}

	var certs []*x509.Certificate
	rest := []byte(conf.Chain)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			t.Fatalf("chain holds a %s block", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("chain certificate: %v", err)
		}
		certs = append(certs, c)
	}
	if len(certs) < 1 || strings.TrimSpace(string(rest)) != "" {
		t.Fatalf("ca_certificate_chain is not a PEM bundle: %q", conf.Chain)
	}
	hexColons := func(b []byte) string {
		parts := make([]string, len(b))
		for i, x := range b {
			parts[i] = fmt.Sprintf("%02X", x)
		}
		return strings.Join(parts, ":")
	}
	found := false
	for _, c := range certs {
		s256 := sha256.Sum256(c.Raw)
		if hexColons(s256[:]) != conf.CA.FingerprintSHA256 {
			continue
		}
		found = true
		s1 := sha1.Sum(c.Raw)
		if conf.CA.FingerprintSHA1 != hexColons(s1[:]) || conf.CA.Subject != c.Subject.String() || conf.CA.Issuer != c.Issuer.String() ||
			!strings.EqualFold(conf.CA.Serial, c.SerialNumber.Text(16)) || !conf.CA.NotBefore.Equal(c.NotBefore) || !conf.CA.NotAfter.Equal(c.NotAfter) || !c.IsCA {
			t.Errorf("ca_certificate %+v does not describe %v", conf.CA, c.Subject)
		}
	}
	if !found {
		t.Errorf("no certificate in the chain has fingerprint %s", conf.CA.FingerprintSHA256)
	}
	// The chain is what clients trust: the API's own test client trusts the same root.
	if !certs[len(certs)-1].Equal(gh.Server.CA().Root()) && !certs[0].Equal(gh.Server.CA().Root()) {
		t.Error("the chain does not contain the CA root")
	}

	var st map[string]any
	gh.JSON("GET", proxyPath+"/status", adm, nil, http.StatusOK, &st)
	if st["status"] != "ok" || st["database"] == nil || st["version"] == nil {
		t.Errorf("status: %v", st)
	}
}
