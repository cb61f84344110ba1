package secrets

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
)

// Sealed value format, version 1:
//
//	v1:<keyid>:<base64(nonce || ciphertext || tag)>
//
// keyid is 8 lower-case hex digits naming the master key (see Keyring.KeyID),
// the nonce is 12 random bytes, the cipher is AES-256-GCM and base64 is the
// standard padded alphabet. The whole value is printable ASCII so it fits a
// TEXT column. The version and key id are authenticated together with the
// caller's AAD, so neither can be altered without Open failing.
const sealVersion = "v1"

// HKDF "info" labels; each purpose gets an independent key, so a leak or misuse
// of one (say, an index key used in a log) reveals nothing about another.
const (
	infoID      = "gatehouse/v1/key-id"
	infoEncrypt = "gatehouse/v1/encrypt"
	infoIndex   = "gatehouse/v1/index"
	infoSigning = "gatehouse/v1/signing"
)

var (
	// ErrUnknownKey reports a sealed value made under a key this keyring does
	// not hold (another master key, or one rotated away).
	ErrUnknownKey = errors.New("sealed with an unknown key")
	// ErrDecrypt reports a sealed value that is malformed, was tampered with,
	// or is opened with a different AAD than it was sealed with.
	ErrDecrypt = errors.New("decryption failed")
)

// Keyring holds the keys derived from one master key. It is safe for
// concurrent use.
//
// Only one key is held today; the key id in every sealed value lets a later
// version hold several (the newest sealing, all of them opening) to rotate the
// master key without re-encrypting everything at once.
type Keyring struct {
	id      string
	aead    cipher.AEAD
	index   []byte
	signing []byte
	// indexKeys caches keyed HMAC states of each index purpose: Index runs on every proxied request (the
	// credential lookup), and deriving the key, or keying a new HMAC, each time cost more than hashing the secret.
	indexKeys sync.Map // purpose -> *sync.Pool of *indexState (HMAC-SHA256 under the purpose's key)
}

// NewKeyring derives the purpose keys from master, which must be MasterKeySize
// bytes of uniformly random data (see LoadOrCreateMasterKey).
func NewKeyring(master []byte) (*Keyring, error) {
	if len(master) != MasterKeySize {
		return nil, fmt.Errorf("new keyring: master key is %d bytes, want %d", len(master), MasterKeySize)
	}
	derive := func(info string) []byte {
		// Errors from hkdf.Key only arise from an over-long output length.
		k, err := hkdf.Key(sha256.New, master, nil, info, 32)
		if err != nil {
			panic("secrets: hkdf: " + err.Error())
		}
		return k
	}
	idKey := sha256.Sum256(derive(infoID))
	block, err := aes.NewCipher(derive(infoEncrypt))
	if err != nil {
		return nil, fmt.Errorf("new keyring: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("new keyring: %w", err)
	}
	return &Keyring{
		id:      hex.EncodeToString(idKey[:4]),
		aead:    aead,
		index:   derive(infoIndex),
		signing: derive(infoSigning),
	}, nil
}

// KeyID returns the 8 hex digit identifier of the master key: the first four
// bytes of SHA-256 over an HKDF-derived id key, so it names the key without
// revealing anything usable about it.
func (k *Keyring) KeyID() string { return k.id }

// Seal encrypts plaintext with AES-256-GCM under a fresh random nonce, binding
// it to aad: the value opens only with the same aad. Use an aad naming the row
// and field the value is stored in (e.g. "target:42:credential") so a value
// copied to another row or field fails to open.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	prefix := sealVersion + ":" + k.id + ":"
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	rand.Read(nonce)
	raw := k.aead.Seal(nonce, nonce, plaintext, sealAAD(prefix, aad))
	out := make([]byte, len(prefix)+base64.StdEncoding.EncodedLen(len(raw)))
	copy(out, prefix)
	base64.StdEncoding.Encode(out[len(prefix):], raw)
	return out, nil
}

// Open decrypts a value produced by Seal with the same aad. It returns an
// error wrapping ErrUnknownKey if the value was sealed under another master
// key, and one wrapping ErrDecrypt if it is malformed, tampered with, or aad
// differs.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	version, rest, ok := bytes.Cut(sealed, []byte(":"))
	if !ok || string(version) != sealVersion {
		return nil, fmt.Errorf("open sealed value: unsupported format: %w", ErrDecrypt)
	}
	id, body, ok := bytes.Cut(rest, []byte(":"))
	if !ok {
		return nil, fmt.Errorf("open sealed value: missing key id: %w", ErrDecrypt)
	}
	if string(id) != k.id {
		return nil, fmt.Errorf("open sealed value: key id %q: %w", printable(id), ErrUnknownKey)
	}
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(body)))
	n, err := base64.StdEncoding.Strict().Decode(raw, body)
	if err != nil {
		return nil, fmt.Errorf("open sealed value: bad encoding: %w", ErrDecrypt)
	}
	raw = raw[:n]
	ns := k.aead.NonceSize()
	if len(raw) < ns+k.aead.Overhead() {
		return nil, fmt.Errorf("open sealed value: too short: %w", ErrDecrypt)
	}
	prefix := sealVersion + ":" + k.id + ":"
	plain, err := k.aead.Open(nil, raw[:ns], raw[ns:], sealAAD(prefix, aad))
	if err != nil {
		// The cipher's own error says nothing more useful; do not hint at
		// which check failed.
		return nil, fmt.Errorf("open sealed value: %w", ErrDecrypt)
	}
	return plain, nil
}

// SealString is Seal for text, returning the sealed value as a string.
func (k *Keyring) SealString(plaintext, aad string) (string, error) {
	b, err := k.Seal([]byte(plaintext), []byte(aad))
	return string(b), err
}

// OpenString is Open for values stored as strings.
func (k *Keyring) OpenString(sealed, aad string) (string, error) {
	b, err := k.Open([]byte(sealed), []byte(aad))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// Index returns a hex HMAC-SHA256 of secret under a key specific to purpose,
// for finding a row by a secret (an API token, a proxy credential) without
// storing the secret or decrypting every row. Equal inputs give equal indexes;
// without the master key an index cannot be computed or reversed.
func (k *Keyring) Index(purpose string, secret []byte) string {
	p, ok := k.indexKeys.Load(purpose)
	if !ok {
		p, _ = k.indexKeys.LoadOrStore(purpose, k.newIndexPool(purpose))
	}
	pool := p.(*sync.Pool)
	st := pool.Get().(*indexState)
	st.mac.Reset()
	st.mac.Write(secret)
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], st.mac.Sum(st.sum[:0]))
	pool.Put(st)
	return string(out[:])
}

// indexState is a keyed HMAC with room for its sum, reused across Index
// calls: a reset HMAC restarts from its keyed state, so reuse skips hashing
// the key pads and the allocations of hmac.New on every lookup.
type indexState struct {
	mac hash.Hash
	sum [sha256.Size]byte
}

func (k *Keyring) newIndexPool(purpose string) *sync.Pool {
	key := k.purposeKey(k.index, purpose)
	return &sync.Pool{New: func() any { return &indexState{mac: hmac.New(sha256.New, key)} }}
}

// SigningKey returns a 32-byte key specific to purpose, for HMAC-signing tokens
// or chaining recording trails. The same keyring and purpose always give the
// same key; different purposes give unrelated keys.
func (k *Keyring) SigningKey(purpose string) []byte {
	return k.purposeKey(k.signing, purpose)
}

func (k *Keyring) purposeKey(base []byte, purpose string) []byte {
	key, err := hkdf.Expand(sha256.New, base, purpose, 32)
	if err != nil {
		panic("secrets: hkdf: " + err.Error())
	}
	return key
}

// sealAAD authenticates the header along with the caller's aad. The header has
// a fixed shape (no ':' inside its fields), so the concatenation is unambiguous.
func sealAAD(prefix string, aad []byte) []byte {
	out := make([]byte, 0, len(prefix)+len(aad))
	out = append(out, prefix...)
	return append(out, aad...)
}

// printable keeps attacker-controlled bytes from a stored value out of error
// messages in any unsafe or unbounded form.
func printable(b []byte) string {
	if len(b) > 16 {
		b = b[:16]
	}
	return strings.ToValidUTF8(string(b), "?")
}
