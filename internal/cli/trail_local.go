package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/recording"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// trailVerifyCmd is `gatehouse trail verify`: it checks trail hash chains on the server's own disk, with the
// server's master key, so it works while the server is down (after a crash, on a copied data dir) and does not
// trust the server to report on its own files.
type trailVerifyCmd struct {
	Sessions      []string `arg:"" optional:"" name:"session-id" help:"Sessions to verify (default: every trail in the data dir)."`
	DataDir       string   `name:"data-dir" env:"GATEHOUSE_DATA_DIR" default:"./gatehouse-data" type:"path" help:"The server's data directory (trails are in its recordings folder)."`
	MasterKeyFile string   `name:"master-key-file" env:"GATEHOUSE_MASTER_KEY_FILE" default:"" type:"path" help:"File with the master key (default: <data-dir>/master.key)."`
	MasterKey     string   `name:"master-key" env:"GATEHOUSE_MASTER_KEY" default:"" help:"The master key itself, if the server is given it this way; prefer the env variable."`
	DB            string   `name:"db" env:"GATEHOUSE_DB" default:"" help:"The server's database, for the seals stored at close (default: the SQLite file in the data dir; a postgres:// URL for PostgreSQL)."`
	NoSeal        bool     `name:"no-seal" help:"Check the hash chains only, without the database: records cut from the end of a trail then go unnoticed."`
}

// trailExt is how recording names trail files; verify lists them to find every session.
const trailExt = ".trail"

// Run verifies each trail and prints one line per session: OK with what the chain shows, or FAIL with the first
// bad line. The exit code is 1 when any trail fails or cannot be read.
func (c *trailVerifyCmd) Run(g *Globals) error {
	key, err := c.masterKey()
	if err != nil {
		return err
	}
	keys, err := secrets.NewKeyring(key)
	if err != nil {
		return fmt.Errorf("master key: %w", err)
	}
	dir := filepath.Join(c.DataDir, "recordings")
	// recording.Open creates a missing directory; a verifier must not, so a wrong --data-dir is an error.
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("no trail directory at %s: is --data-dir the server's data directory?", dir)
	}
	// The same derivation as the server's data plane, so the chain key matches the one the trails were written with.
	trails, err := recording.Open(dir, keys.SigningKey("trail-chain"), nil)
	if err != nil {
		return err
	}
	defer trails.Close()
	ids := c.Sessions
	if len(ids) == 0 {
		if ids, err = trailIDs(dir); err != nil {
			return err
		}
		if len(ids) == 0 {
			fmt.Fprintf(g.Stdout, "no trails in %s\n", dir)
			return nil
		}
	}
	var db *store.Store
	if !c.NoSeal {
		cfg := config.Config{DataDir: c.DataDir, DB: c.DB}
		if db, err = store.OpenExisting(g.Ctx, cfg.DatabaseDSN(), nil); err != nil {
			return fmt.Errorf("the seals stored at close are in the server's database (--db, or --no-seal to check chains only): %w", err)
		}
		defer db.Close()
	} else {
		fmt.Fprintln(g.Stdout, "note: --no-seal: chains only; a trail cut short at its end still verifies")
	}
	failed := 0
	for _, id := range ids {
		rep, err := trails.Verify(g.Ctx, id)
		var sc recording.SealCheck
		if err == nil && db != nil {
			sc, err = storedSeal(g, db, rep)
		}
		switch {
		case err != nil:
			failed++
			fmt.Fprintf(g.Stdout, "ERROR %s: %v\n", id, err)
		case !rep.OK:
			failed++
			fmt.Fprintf(g.Stdout, "FAIL %s: line %d: %s\n", id, rep.FirstBadLine, rep.Problem)
		case sc.Sealed && !sc.Matches:
			failed++
			fmt.Fprintf(g.Stdout, "FAIL %s: %s; the file ends with %d records, %s\n", id, sc.Problem, rep.Records, trailState(rep))
		default:
			state := trailState(rep)
			if sc.Sealed {
				state += ", matches the seal stored at close"
			}
			fmt.Fprintf(g.Stdout, "OK %s: %d records, %s, head %s\n", id, rep.Records, state, rep.Head)
		}
	}
	if failed > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%d of %d trails failed verification", failed, len(ids))}
	}
	return nil
}

// storedSeal compares a verified trail with the seal its session row holds, exactly as the service API's verify
// does. A trail whose session is not in the database cannot be vouched for.
func storedSeal(g *Globals, db *store.Store, rep recording.VerifyReport) (recording.SealCheck, error) {
	sess, err := db.Session(g.Ctx, rep.SessionID)
	if errors.Is(err, store.ErrNotExist) {
		return recording.SealCheck{}, errors.New("no session with this id is stored in the database, so its seal cannot be checked")
	} else if err != nil {
		return recording.SealCheck{}, err
	}
	return recording.CheckSeal(rep, recording.Seal{Head: sess.TrailHead, Records: sess.TrailRecords}), nil
}

// masterKey reads the key the server uses, never creating one: a new key would verify nothing.
func (c *trailVerifyCmd) masterKey() ([]byte, error) {
	if c.MasterKey != "" {
		return secrets.ParseMasterKey(c.MasterKey)
	}
	cfg := config.Config{DataDir: c.DataDir, MasterKeyFile: c.MasterKeyFile}
	path := cfg.MasterKeyPath()
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no master key at %s: give --data-dir, --master-key-file or GATEHOUSE_MASTER_KEY", path)
		}
		return nil, fmt.Errorf("master key: %w", err)
	}
	key, err := secrets.LoadOrCreateMasterKey(path)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return key, nil
}

// trailState says how a verified trail ends.
func trailState(rep recording.VerifyReport) string {
	var s string
	switch {
	case rep.Closed:
		s = "closed"
	case rep.Interrupted:
		s = "interrupted"
	default:
		s = "open (still recording, or the server stopped and has not restarted since)"
	}
	if rep.TornTail {
		s += ", torn last line"
	}
	return s
}

// trailIDs lists the sessions with a trail in dir, sorted.
func trailIDs(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list trails: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if id, ok := strings.CutSuffix(e.Name(), trailExt); ok && e.Type().IsRegular() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}
