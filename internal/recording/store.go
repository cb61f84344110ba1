package recording

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBodyLimit is the body limit of a Store whose BodyLimit is zero.
const DefaultBodyLimit = 64 << 10

// trailExt is the file name extension of trails.
const trailExt = ".trail"

var (
	// ErrNotExist is returned for a session that has no trail.
	ErrNotExist = errors.New("recording: session trail does not exist")
	// ErrInvalidSessionID is returned for a session id that cannot name a
	// trail file.
	ErrInvalidSessionID = errors.New("recording: invalid session id")
	// ErrClosed is returned by a Writer after Close.
	ErrClosed = errors.New("recording: trail writer closed")
)

// Store keeps the session trails in one directory.
type Store struct {
	// BodyLimit is the most body bytes recorded per request and per
	// response; zero means DefaultBodyLimit and a negative value records no
	// body. Set it before the first Create.
	BodyLimit int
	// Archive, if set, opens the copy of a closed trail kept outside the directory (a cluster keeps one in its
	// database) when the directory has none: another node recorded it, or this node lost its disk. It returns
	// an error wrapping ErrNotExist when there is no copy either. Set it before the first read.
	Archive func(sessionID string) (io.ReadCloser, error)

	root *os.Root // every file operation goes through it, so no name can leave dir
	key  []byte
	log  *slog.Logger
	now  func() time.Time

	mu   sync.Mutex
	live map[string]*Writer
	subs map[string]map[*subscriber]struct{}
	// followers counts the subscribers in subs, so that publishing with none skips mu.
	followers atomic.Int64
}

// Open opens (creating it with mode 0700 if needed) the trail directory dir.
// chainKey keys the hash chain of every trail and must be at least 32 random
// bytes kept outside dir. A nil log discards log output.
func Open(dir string, chainKey []byte, log *slog.Logger) (*Store, error) {
	if len(chainKey) < 32 {
		return nil, fmt.Errorf("open recording store: chain key has %d bytes, need at least 32", len(chainKey))
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open recording store: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open recording store: %w", err)
	}
	if fi, err := root.Stat("."); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("recording directory is accessible to other users", "dir", dir, "mode", fi.Mode().Perm().String())
	}
	return &Store{
		root: root,
		key:  append([]byte(nil), chainKey...),
		log:  log,
		now:  time.Now,
		live: make(map[string]*Writer),
		subs: make(map[string]map[*subscriber]struct{}),
	}, nil
}

// Close releases the directory. Writers still open keep their files.
func (s *Store) Close() error {
	return s.root.Close()
}

func (s *Store) bodyLimit() int {
	switch {
	case s.BodyLimit == 0:
		return DefaultBodyLimit
	case s.BodyLimit < 0:
		return 0
	}
	return s.BodyLimit
}

// validSessionID accepts 1 to 128 ASCII letters, digits, '-' and '_',
// starting with a letter or digit: UUIDs and similar ids, and never a path
// separator, a dot or anything a file system could interpret.
func validSessionID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i, c := range []byte(id) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '-' || c == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}

func trailName(id string) (string, error) {
	if !validSessionID(id) {
		return "", fmt.Errorf("%w: %q", ErrInvalidSessionID, id)
	}
	return id + trailExt, nil
}

// openTrail opens the trail of id for reading, from the directory or else from the Archive.
func (s *Store) openTrail(id string) (io.ReadCloser, error) {
	name, err := trailName(id)
	if err != nil {
		return nil, err
	}
	f, err := s.root.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		if s.Archive != nil {
			return s.Archive(id)
		}
		return nil, fmt.Errorf("%w: %s", ErrNotExist, id)
	}
	return f, err
}

// OpenLocal opens the trail file of a session in the directory, for copying a sealed trail elsewhere.
func (s *Store) OpenLocal(id string) (io.ReadCloser, error) {
	name, err := trailName(id)
	if err != nil {
		return nil, err
	}
	f, err := s.root.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotExist, id)
	}
	return f, err
}

// sessionIDs lists the sessions that have a trail.
func (s *Store) sessionIDs() ([]string, error) {
	d, err := s.root.Open(".")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	var ids []string
	for {
		ents, err := d.ReadDir(256)
		for _, e := range ents {
			id, ok := strings.CutSuffix(e.Name(), trailExt)
			if ok && e.Type().IsRegular() && validSessionID(id) {
				ids = append(ids, id)
			}
		}
		if err == io.EOF {
			return ids, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// LocalTrails lists the sessions whose trail file is in the directory (sealed or still being written).
func (s *Store) LocalTrails() ([]string, error) {
	ids, err := s.sessionIDs()
	if err != nil {
		return nil, fmt.Errorf("list trails: %w", err)
	}
	return ids, nil
}

// Dir is the trail directory.
func (s *Store) Dir() string { return s.root.Name() }

// ErrLive is returned when deleting the trail of a session that is still being recorded.
var ErrLive = errors.New("recording: trail is still being written")

// Delete removes the trail of a closed session, for retention. A missing trail is not an error; a live one is.
func (s *Store) Delete(id string) error {
	name, err := trailName(id)
	if err != nil {
		return fmt.Errorf("delete trail: %w", err)
	}
	s.mu.Lock()
	_, live := s.live[id]
	s.mu.Unlock()
	if live {
		return fmt.Errorf("delete trail %s: %w", id, ErrLive)
	}
	if err := s.root.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete trail: %w", err)
	}
	return nil
}
