package serviceapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestReauthorizationInterval: the reauthorization_interval setting is how often the proxy reloads its policy from
// the database, which is how it learns of changes other nodes wrote. A change written to the store behind this
// node's back reaches the gate within the (shortened) interval, where the default 60 s would not have let it in the
// time the test waits.
func TestReauthorizationInterval(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	gh.JSON("PUT", proxyPath+"/settings", adm, map[string]any{"reauthorization_interval": 1}, http.StatusOK, nil)
	_, tok, role := newUserWithRole(t, gh, adm, "remote", auth.APIProxyCredentialsOwn)
	target := gh.Create(targetsPath, adm, targetBody("reauth-api", role))
	cred := gh.Create(ownCreds, tok, map[string]any{"name": "laptop", "target": map[string]string{"id": target}})
	status, secret := gh.Do("GET", ownCreds+"/"+cred+"/secret", tok, nil)
	if status != http.StatusOK {
		t.Fatalf("secret: %d", status)
	}
	if err := authorize(gh, string(secret)); err != nil {
		t.Fatalf("gate refused a fresh credential: %v", err)
	}
	// What another node would do: disable the credential in the shared database, without telling this one.
	ctx := context.Background()
	c, err := gh.Server.Store().Credential(ctx, cred)
	if err != nil {
		t.Fatal(err)
	}
	c.Enabled = false
	if err := gh.Server.Store().UpdateCredential(ctx, c, "another-node"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for authorize(gh, string(secret)) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the gate still accepts the credential disabled in the database 20 s ago, with reauthorization_interval 1")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
