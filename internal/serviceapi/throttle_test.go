package serviceapi_test

import (
	"net"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// fromAddr is an HTTPS client of gh whose connections come from the loopback address src.
func fromAddr(gh *testserver.Instance, src string) *http.Client {
	tr := gh.Client.Transport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext
	tr.DisableKeepAlives = true
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// configLogin is a configuration-API Basic login from src; it returns the status.
func configLogin(t *testing.T, gh *testserver.Instance, src, user, pass string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", gh.URL+"/api/authentication", nil)
	req.SetBasicAuth(user, pass)
	resp, err := fromAddr(gh, src).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestLoginThrottleKeepsOwnerIn: five bad passwords used to lock the real user out from every address, so an
// anonymous attacker could keep the admin out. Now an attacker hammering admin through both dialects' logins
// and the token endpoint, from several addresses, is blocked itself, and the admin still logs in through each
// from their own address.
func TestLoginThrottleKeepsOwnerIn(t *testing.T) {
	// The production limiter with short delays: the test asserts who gets in, not how long it takes.
	gh := testserver.Start(t, testserver.Options{LoginLimiter: &auth.MemoryLoginLimiter{BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}})
	cl := gh.Create(clientsPath, gh.AdminToken(), map[string]any{"name": "ci"})
	for _, src := range []string{"127.0.7.2", "127.0.7.3"} {
		for i := range 6 {
			a := tokPost(t, gh, tokReq{form: tokPasswordForm("admin", "Wrong-pass-"+strconv.Itoa(i), "client_id", "gatehouse-cli"), from: src})
			want := http.StatusUnauthorized
			if i == 5 {
				want = http.StatusTooManyRequests
			}
			if a.Status != want {
				t.Fatalf("attack %s #%d on the token endpoint: %d %s, want %d", src, i+1, a.Status, a.Raw, want)
			}
		}
	}
	for i := range 6 {
		want := http.StatusUnauthorized
		if i == 5 {
			want = http.StatusTooManyRequests
		}
		if s := configLogin(t, gh, "127.0.7.4", "admin", "Wrong-pass-1"); s != want {
			t.Fatalf("attack #%d on the configuration API login: %d, want %d", i+1, s, want)
		}
	}
	// API client logins are throttled the same way, by client id.
	for i := range 6 {
		a := tokPost(t, gh, tokReq{form: url.Values{"grant_type": {"password"}, "username": {cl}, "password": {"guess"}},
			basic: []string{"gh-guess", "guess"}, from: "127.0.7.5"})
		if want := map[bool]int{false: 401, true: 429}[i == 5]; a.Status != want {
			t.Fatalf("attack #%d on an API client: %d %s, want %d", i+1, a.Status, a.Raw, want)
		}
	}

	if a := tokPost(t, gh, tokReq{form: tokPasswordForm("admin", testserver.AdminPassword, "client_id", "gatehouse-cli"), from: "127.0.0.1"}); a.Status != http.StatusOK {
		t.Errorf("the admin is locked out of the token endpoint: %d %s", a.Status, a.Raw)
	}
	if s := configLogin(t, gh, "127.0.0.1", "admin", testserver.AdminPassword); s != http.StatusOK {
		t.Errorf("the admin is locked out of the configuration API: %d", s)
	}
	// The attackers stay blocked, even with the right password.
	if a := tokPost(t, gh, tokReq{form: tokPasswordForm("admin", testserver.AdminPassword, "client_id", "gatehouse-cli"), from: "127.0.7.2"}); a.Status != http.StatusTooManyRequests {
		t.Errorf("an attacker address got through: %d %s", a.Status, a.Raw)
	}
}
