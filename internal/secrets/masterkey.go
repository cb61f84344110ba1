// Package secrets holds Gatehouse's key material and the primitives built on it:
// authenticated encryption of secrets at rest, keyed lookup indexes, derived
// signing keys, password hashing and constant-time comparison.
package secrets

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// MasterKeySize is the length in bytes of a master key.
const MasterKeySize = 32

// ErrInsecureKeyFile reports a master key file that group or other users may access.
var ErrInsecureKeyFile = errors.New("master key file is accessible by group or others")

// ParseMasterKey decodes a master key given as one line of hex (64 digits) or
// base64 (standard or URL alphabet, padded or not), as found in the key file or
// in GATEHOUSE_MASTER_KEY. Surrounding white space is ignored. The decoded key
// must be exactly MasterKeySize bytes.
func ParseMasterKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("parse master key: empty")
	}
	// 64 hex digits cannot be valid 32-byte base64 (that is 43 or 44
	// characters), so trying hex first is unambiguous.
	if len(s) == hex.EncodedLen(MasterKeySize) {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
	} {
		k, err := enc.Strict().DecodeString(s)
		if err != nil {
			continue
		}
		if len(k) != MasterKeySize {
			return nil, fmt.Errorf("parse master key: decoded %d bytes, want %d", len(k), MasterKeySize)
		}
		return k, nil
	}
	return nil, fmt.Errorf("parse master key: not %d bytes of hex or base64", MasterKeySize)
}

// LoadOrCreateMasterKey reads the master key stored at path, or, if the file
// does not exist, generates a new random key and writes it there base64-encoded
// with mode 0600 (creating missing directories with mode 0700). A file that
// grants any permission to group or others is refused with ErrInsecureKeyFile
// rather than silently fixed: its key may already have leaked.
func LoadOrCreateMasterKey(path string) ([]byte, error) {
	k, err := readMasterKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create master key: %w", err)
	}
	k = make([]byte, MasterKeySize)
	rand.Read(k)
	// O_EXCL: if another process created the key between our read and now,
	// keep its key instead of overwriting one that may already be in use.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readMasterKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("create master key: %w", err)
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("create master key: %w", err)
	}
	return k, nil
}

func readMasterKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read master key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read master key: %w", err)
	}
	// Windows has no POSIX mode bits to check; ACLs are the operator's job there.
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("read master key %s (mode %04o, want 0600): %w", path, st.Mode().Perm(), ErrInsecureKeyFile)
	}
	// A key line is under 100 bytes; the limit keeps a wrong path from being slurped whole.
	buf, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("read master key %s: %w", path, err)
	}
	k, err := ParseMasterKey(string(buf))
	if err != nil {
		return nil, fmt.Errorf("read master key %s: %w", path, err)
	}
	return k, nil
}
