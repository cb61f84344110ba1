package serviceapi_test

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/mfa"
)

// exerciseMFA runs the second-factor operations through the OpenAPI checker: TOTP on the LOCAL source, a user's
// self-enrolment, a login with the code, the admin's status, enrolment and reset; then the second factor is off
// again for the rest of the exercise.
func exerciseMFA(t *testing.T, cl *client, adm string) {
	const (
		U         = "/local-user-store/api/v1"
		tokenPath = "/auth/api/v1/oauth/token"
	)
	local := map[string]any{"name": "Local users", "enabled": true, "connection": map[string]any{"type": "LOCAL", "mfa_type": "TOTP"}}
	cl.do(exchange{method: "PUT", path: sourcesPath + "/local", token: adm, want: 200, json: local})
	user := cl.id(exchange{method: "POST", path: U + "/users", token: adm, want: 201, json: map[string]any{"username": "otp-user", "password": "Otp-user-pass-1"}})
	login := url.Values{"grant_type": {"password"}, "client_id": {"gatehouse-cli"}, "username": {"otp-user"}, "password": {"Otp-user-pass-1"}}
	cl.do(exchange{method: "POST", path: tokenPath, form: login, want: 401})
	creds := url.Values{"username": {"otp-user"}, "password": {"Otp-user-pass-1"}}
	var enr struct {
		Secret string `json:"secret"`
	}
	json.Unmarshal(cl.do(exchange{method: "POST", path: "/auth/api/v1/mfa/totp/enrol", form: creds, want: 201}), &enr)
	secret, err := mfa.DecodeSecret(enr.Secret)
	if err != nil {
		t.Fatalf("enrolment secret: %v", err)
	}
	login.Set("otp", mfa.Code(secret, time.Now()))
	cl.do(exchange{method: "POST", path: tokenPath, form: login, want: 200})
	cl.do(exchange{method: "POST", path: "/auth/api/v1/mfa/totp/enrol", form: creds, want: 409})
	cl.do(exchange{method: "GET", path: U + "/users/" + user + "/mfa", token: adm, want: 200})
	cl.do(exchange{method: "POST", path: U + "/users/" + user + "/mfa/totp", token: adm, want: 201})
	cl.do(exchange{method: "DELETE", path: U + "/users/" + user + "/mfa", token: adm, want: 200})
	cl.do(exchange{method: "GET", path: U + "/users/no-such-user/mfa", token: adm, want: 404})
	local["connection"] = map[string]any{"type": "LOCAL"}
	cl.do(exchange{method: "PUT", path: sourcesPath + "/local", token: adm, want: 200, json: local})
	cl.do(exchange{method: "POST", path: U + "/users/" + user + "/mfa/totp", token: adm, want: 409})
}
