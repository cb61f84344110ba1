package secrets

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters for new hashes: the OWASP Password Storage Cheat Sheet's
// first recommendation (19 MiB, 2 passes, 1 lane).
const (
	argonMemoryKiB = 19456
	argonTime      = 2
	argonThreads   = 1
	argonSaltLen   = 16
	argonKeyLen    = 32
)

// Bounds accepted when verifying. Stored hashes come from our own database,
// but a hash with absurd parameters would turn every login into a denial of
// service, so they are refused rather than honoured.
const (
	maxMemoryKiB = 1 << 20 // 1 GiB
	maxTime      = 16
	maxThreads   = 16
	minSaltLen   = 8
	maxSaltLen   = 64
	minKeyLen    = 16
	maxKeyLen    = 64
)

// ErrBadHash reports an encoded password hash that is not a well-formed
// argon2id PHC string with acceptable parameters.
var ErrBadHash = errors.New("malformed password hash")

type argonParams struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// HashPassword hashes pw with argon2id under a random salt and returns it in
// PHC string format:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// with salt and hash in unpadded standard base64.
func HashPassword(pw string) (string, error) {
	salt := make([]byte, argonSaltLen)
	rand.Read(salt)
	p := argonParams{memory: argonMemoryKiB, time: argonTime, threads: argonThreads, salt: salt}
	p.key = p.derive(pw, argonKeyLen)
	return p.encode(), nil
}

// VerifyPassword reports whether pw matches encoded, a hash from HashPassword
// (parameters are read from the string, so hashes made with older parameters
// keep working). A malformed hash gives an error wrapping ErrBadHash, never a
// match.
func VerifyPassword(encoded, pw string) (bool, error) {
	p, err := parsePHC(encoded)
	if err != nil {
		return false, fmt.Errorf("verify password: %w", err)
	}
	got := p.derive(pw, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(got, p.key) == 1, nil
}

var dummyHash = sync.OnceValue(func() string {
	h, _ := HashPassword("gatehouse dummy password")
	return h
})

// DummyVerify does the work of verifying pw against a hash made with the
// current parameters and discards the result. Call it when the user is unknown
// so that a failed login takes as long as for a known user with a wrong
// password, and response time does not reveal which user names exist.
func DummyVerify(pw string) {
	_, _ = VerifyPassword(dummyHash(), pw)
}

func (p argonParams) derive(pw string, keyLen uint32) []byte {
	return argon2.IDKey([]byte(pw), p.salt, p.time, p.memory, p.threads, keyLen)
}

func (p argonParams) encode() string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads, b64.EncodeToString(p.salt), b64.EncodeToString(p.key))
}

// parsePHC parses "$argon2id$v=19$m=M,t=T,p=P$salt$hash" strictly: fields in
// this order, decimal numbers without signs or leading zeros, unpadded base64.
func parsePHC(s string) (argonParams, error) {
	var p argonParams
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return p, fmt.Errorf("%w: want 5 '$'-separated fields", ErrBadHash)
	}
	if parts[1] != "argon2id" {
		return p, fmt.Errorf("%w: algorithm %q is not argon2id", ErrBadHash, truncate(parts[1]))
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, fmt.Errorf("%w: unsupported version %q", ErrBadHash, truncate(parts[2]))
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return p, fmt.Errorf("%w: want parameters m, t, p", ErrBadHash)
	}
	m, err := param(kv[0], "m", maxMemoryKiB)
	if err != nil {
		return p, err
	}
	t, err := param(kv[1], "t", maxTime)
	if err != nil {
		return p, err
	}
	th, err := param(kv[2], "p", maxThreads)
	if err != nil {
		return p, err
	}
	// argon2 needs at least 8 KiB per lane.
	if m < 8*th {
		return p, fmt.Errorf("%w: memory %d KiB is below 8 KiB per lane", ErrBadHash, m)
	}
	p.memory, p.time, p.threads = m, t, uint8(th)
	if p.salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4]); err != nil {
		return p, fmt.Errorf("%w: salt: %w", ErrBadHash, err)
	}
	if len(p.salt) < minSaltLen || len(p.salt) > maxSaltLen {
		return p, fmt.Errorf("%w: salt length %d", ErrBadHash, len(p.salt))
	}
	if p.key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5]); err != nil {
		return p, fmt.Errorf("%w: hash: %w", ErrBadHash, err)
	}
	if len(p.key) < minKeyLen || len(p.key) > maxKeyLen {
		return p, fmt.Errorf("%w: hash length %d", ErrBadHash, len(p.key))
	}
	return p, nil
}

// param parses "name=N" with 1 <= N <= max.
func param(s, name string, max uint32) (uint32, error) {
	v, ok := strings.CutPrefix(s, name+"=")
	if !ok {
		return 0, fmt.Errorf("%w: want parameter %s", ErrBadHash, name)
	}
	if v == "" || len(v) > 10 || v[0] == '0' || strings.Trim(v, "0123456789") != "" {
		return 0, fmt.Errorf("%w: parameter %s is not a positive decimal", ErrBadHash, name)
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n > uint64(max) {
		return 0, fmt.Errorf("%w: parameter %s out of range", ErrBadHash, name)
	}
	return uint32(n), nil
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32]
	}
	return s
}
