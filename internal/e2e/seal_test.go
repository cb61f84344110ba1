package e2e_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/cli"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

type trailCheck struct {
	OK          bool   `json:"ok"`
	Records     int64  `json:"records"`
	Closed      bool   `json:"closed"`
	Interrupted bool   `json:"interrupted"`
	Sealed      bool   `json:"sealed"`
	MatchesSeal bool   `json:"matches_seal"`
	Problem     string `json:"problem"`
}

// TestTrailCutFromTheEndIsDetected pins that the seal stored at close is checked: removing the last exchanges and
// the close record of a closed trail leaves a chain that verifies on its own (recovery even appends an
// "interrupted" record), so only the comparison with the stored seal can tell.
func TestTrailCutFromTheEndIsDetected(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	hc := f.client(false)
	c := f.credential(f.alpha, "seal", nil)
	for i := 0; i < 3; i++ {
		if st, body := f.do(hc, "GET", f.https.URL+"/api/items", c.Secret, ""); st != 200 {
			t.Fatalf("request %d: %d %s", i, st, body)
		}
	}
	id := f.session(c.ID)
	f.gh.JSON("POST", connsAPI+"/terminate/connection/"+id, f.adm, nil, http.StatusOK, nil)
	f.waitConnection(c.ID, func(cn connection) bool { return cn.ID == id && cn.Status == "TERMINATED" })

	var before trailCheck
	sealWait(t, func() bool {
		f.gh.JSON("GET", connsAPI+"/connections/"+id+"/trail/verify", f.adm, nil, http.StatusOK, &before)
		return before.Sealed
	})
	if !before.OK || !before.Closed || !before.MatchesSeal || before.Records != 5 {
		t.Fatalf("intact trail: %+v, want ok, closed and matching its seal with open + 3 exchanges + close", before)
	}

	if out, code := verifyOffline(t, f.gh.Cfg.DataDir, id); code != 0 || !strings.Contains(out, "OK "+id+": 5 records, closed, matches the seal stored at close") {
		t.Fatalf("offline verify of the intact trail: exit %d\n%s", code, out)
	}

	path := filepath.Join(f.gh.Cfg.DataDir, "recordings", id+".trail")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	cut := bytes.Join(lines[:len(lines)-2], nil) // drop the last exchange and the close record
	if err := os.WriteFile(path, cut, 0o600); err != nil {
		t.Fatal(err)
	}
	// The offline verifier compares with the same seal: a cut trail is not "open, OK" (it was, before the seal
	// was checked), neither before the server notices nor after it marked the trail interrupted.
	for _, when := range []string{"before restart", "after restart"} {
		if when == "after restart" {
			f.gh.Restart()
		}
		out, code := verifyOffline(t, f.gh.Cfg.DataDir, id)
		if code != 1 || !strings.Contains(out, "FAIL "+id+": the trail does not match the seal stored at close") {
			t.Errorf("offline verify of the cut trail %s: exit %d\n%s", when, code, out)
		}
	}
	if out, code := verifyOffline(t, f.gh.Cfg.DataDir, "--no-seal", id); code != 0 || !strings.Contains(out, "chains only") {
		t.Errorf("--no-seal checks the chain alone and says so: exit %d\n%s", code, out)
	}

	var after trailCheck
	f.gh.JSON("GET", connsAPI+"/connections/"+id+"/trail/verify", f.gh.AdminToken(), nil, http.StatusOK, &after)
	if after.OK || after.MatchesSeal || !after.Sealed || after.Problem == "" {
		t.Fatalf("trail cut from the end: %+v, want not ok and not matching the seal", after)
	}
}

// verifyOffline runs `gatehouse trail verify` in process against a data dir.
func verifyOffline(t *testing.T, dataDir string, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), append([]string{"trail", "verify", "--data-dir", dataDir}, args...), &out, &errb)
	return out.String() + errb.String(), code
}

// sealWait polls cond for up to 10 s: a closed session's seal is stored just after the close.
func sealWait(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
