// Package ca is Gatehouse's certificate authority: the proxy CA that clients of
// TLS interception trust, the minting of per-host leaf certificates for it, and
// the issuing of the management API's own server certificate.
//
// The CA is two-level. A root ("Gatehouse Root CA", 10 years) is what clients
// install as trusted; its key signs only the intermediate and is not kept in
// memory. The intermediate ("Gatehouse Proxy CA", 5 years, path length 0)
// signs every leaf, and leaves are served with it.
package ca

import (
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/limits"
)

// Sealer encrypts and decrypts private keys before they touch the disk. aad
// binds each sealed key to its role, so one key file cannot be swapped for
// another. *secrets.Keyring satisfies it.
type Sealer interface {
	Seal(plain, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Default values for the CA's tunable fields.
const (
	DefaultLeafValidity = 24 * time.Hour
	DefaultCacheSize    = 10_000
)

// CA holds the loaded root certificate and the intermediate certificate and
// key. Its methods are safe for concurrent use; set the exported fields right
// after Open, before the first use.
type CA struct {
	// Now returns the current time. nil means time.Now. Tests set it to move
	// the clock for leaf expiry.
	Now func() time.Time
	// LeafValidity is how long minted leaves are valid after now (they are
	// also valid from an hour before now, for clients with slow clocks).
	// Zero means DefaultLeafValidity.
	LeafValidity time.Duration
	// CacheSize bounds the number of leaves kept; the least recently used is
	// dropped first. Zero means DefaultCacheSize.
	CacheSize int
	// MintLimit bounds how many leaves are minted per second (cached leaves do not count): a client naming
	// ever new hosts (under a wildcard target, say) costs a signature each. Nil mints without limit.
	MintLimit *limits.Bucket
	// OnMintLimited, if set, is called each time MintLimit refuses a mint.
	OnMintLimited func()

	dir    string // the node's own files: the management server certificate
	files  Files  // the root and the intermediate
	sealer Sealer
	log    *slog.Logger

	root  *x509.Certificate
	inter *x509.Certificate
	// interKey signs leaves. The root key is deliberately absent.
	interKey  crypto.Signer
	chainPEM  string
	leaves    leafCache
	serverMu  sync.Mutex
	serverCrt *tls.Certificate
	minted    atomic.Int64
}

// Minted counts the leaves minted since Open (cache hits excluded).
func (c *CA) Minted() int64 { return c.minted.Load() }

// Open loads the CA stored in dir, creating the directory (mode 0700), a new
// root and a new intermediate on first use. Private keys are stored sealed with
// sealer, never in clear. A nil log discards log output.
//
// An intermediate that is missing, does not match the root, or expires within
// 30 days is re-issued from the root, which is the only time the root key is
// unsealed; it is dropped again before Open returns.
func Open(dir string, sealer Sealer, log *slog.Logger) (*CA, error) {
	return OpenFiles(Dir(dir), dir, sealer, log)
}

// OpenFiles is Open with the root and the intermediate kept in files (the cluster's database, say) while the
// management server certificate, which names this node, stays in the local directory dir.
func OpenFiles(files Files, dir string, sealer Sealer, log *slog.Logger) (*CA, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &CA{dir: dir, files: files, sealer: sealer, log: log}
	if err := c.load(time.Now()); err != nil {
		return nil, fmt.Errorf("open ca %s: %w", dir, err)
	}
	var b strings.Builder
	for _, crt := range c.Chain() {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: crt.Raw})
	}
	c.chainPEM = b.String()
	return c, nil
}

// Root returns the root certificate, the one clients must trust.
func (c *CA) Root() *x509.Certificate { return c.root }

// Chain returns the intermediate certificate followed by the root. Leaves are
// served with the intermediate; clients trust the root.
func (c *CA) Chain() []*x509.Certificate { return []*x509.Certificate{c.inter, c.root} }

// ChainPEM returns Chain as concatenated PEM blocks, as published to clients.
func (c *CA) ChainPEM() string { return c.chainPEM }

// Info describes the root certificate for display in the API.
type Info struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Serial    string    `json:"serial"` // upper-case hex, as `openssl x509 -serial`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// Fingerprints are over the DER certificate, in upper-case hex with
	// colons, as `openssl x509 -fingerprint` prints them.
	FingerprintSHA1   string `json:"fingerprint_sha1"`
	FingerprintSHA256 string `json:"fingerprint_sha256"`
}

// Info returns a description of the root certificate.
func (c *CA) Info() Info {
	s1 := sha1.Sum(c.root.Raw)
	s256 := sha256.Sum256(c.root.Raw)
	return Info{
		Subject:           c.root.Subject.String(),
		Issuer:            c.root.Issuer.String(),
		Serial:            strings.ToUpper(c.root.SerialNumber.Text(16)),
		NotBefore:         c.root.NotBefore,
		NotAfter:          c.root.NotAfter,
		FingerprintSHA1:   colonHex(s1[:]),
		FingerprintSHA256: colonHex(s256[:]),
	}
}

func (c *CA) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func colonHex(b []byte) string {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 0, len(b)*3)
	for i, x := range b {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, digits[x>>4], digits[x&0xf])
	}
	return string(out)
}
