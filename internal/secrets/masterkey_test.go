package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestParseMasterKey(t *testing.T) {
	key := make([]byte, MasterKeySize)
	for i := range key {
		key[i] = byte(i * 7)
	}
	valid := []struct{ name, in string }{
		{"hex", hex.EncodeToString(key)},
		{"hex upper with newline", " " + strings.ToUpper(hex.EncodeToString(key)) + "\n"},
		{"base64 std", base64.StdEncoding.EncodeToString(key)},
		{"base64 raw", base64.RawStdEncoding.EncodeToString(key)},
		{"base64 url", base64.URLEncoding.EncodeToString(key)},
		{"base64 raw url", base64.RawURLEncoding.EncodeToString(key) + "\r\n"},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMasterKey(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, key) {
				t.Errorf("ParseMasterKey = %x, want %x", got, key)
			}
		})
	}
	invalid := []struct{ name, in string }{
		{"empty", ""},
		{"spaces", "   \n"},
		{"short hex", hex.EncodeToString(key[:16])},
		{"long base64", base64.StdEncoding.EncodeToString(append(key, 1))},
		{"short base64", base64.StdEncoding.EncodeToString(key[:31])},
		{"garbage", "not a key at all, really not"},
		{"two lines", hex.EncodeToString(key) + "\n" + hex.EncodeToString(key)},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := ParseMasterKey(tt.in); err == nil {
				t.Errorf("ParseMasterKey(%q) = %x, want error", tt.in, got)
			}
		})
	}
}

func TestLoadOrCreateMasterKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "master.key")
	k1, err := LoadOrCreateMasterKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != MasterKeySize {
		t.Fatalf("key length %d, want %d", len(k1), MasterKeySize)
	}
	if bytes.Equal(k1, make([]byte, MasterKeySize)) {
		t.Fatal("created key is all zeros")
	}
	if runtime.GOOS != "windows" {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %04o, want 0600", st.Mode().Perm())
		}
		dst, err := os.Stat(filepath.Dir(path))
		if err != nil {
			t.Fatal(err)
		}
		if dst.Mode().Perm() != 0o700 {
			t.Errorf("key dir mode %04o, want 0700", dst.Mode().Perm())
		}
	}
	k2, err := LoadOrCreateMasterKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1, k2) {
		t.Error("reloading the key file gave a different key")
	}
}

func TestLoadMasterKeyHexFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	want := bytes.Repeat([]byte{0xab}, MasterKeySize)
	if err := os.WriteFile(path, []byte(hex.EncodeToString(want)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadOrCreateMasterKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("got %x, want %x", got, want)
	}
}

func TestLoadMasterKeyRefusesOpenPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no POSIX permissions")
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o666, 0o610} {
		t.Run(mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "master.key")
			if err := os.WriteFile(path, []byte(hex.EncodeToString(make([]byte, 32))), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			k, err := LoadOrCreateMasterKey(path)
			if !errors.Is(err, ErrInsecureKeyFile) {
				t.Fatalf("LoadOrCreateMasterKey = %x, %v; want ErrInsecureKeyFile", k, err)
			}
		})
	}
}

func TestLoadMasterKeyRejectsCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(path, []byte("too short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateMasterKey(path); err == nil {
		t.Fatal("corrupt key file accepted")
	}
	// The corrupt file must be left for the operator, not replaced by a new
	// key that would orphan everything sealed under the old one.
	b, _ := os.ReadFile(path)
	if string(b) != "too short\n" {
		t.Errorf("corrupt key file was rewritten to %q", b)
	}
}

func FuzzParseMasterKey(f *testing.F) {
	f.Add(hex.EncodeToString(make([]byte, 32)))
	f.Add(base64.StdEncoding.EncodeToString(make([]byte, 32)))
	f.Add("")
	f.Add("====")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseMasterKey(s)
		if err == nil && len(k) != MasterKeySize {
			t.Fatalf("ParseMasterKey(%q) returned %d bytes", s, len(k))
		}
	})
}
