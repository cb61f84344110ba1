package secrets

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// RandomToken returns nBytes of cryptographically random data encoded as
// unpadded URL-safe base64, suitable for secrets, tokens and nonces. 32 bytes
// (256 bits) is the usual choice for a credential. It panics if nBytes is not
// positive, which is always a programming error.
func RandomToken(nBytes int) string {
	if nBytes <= 0 {
		panic("secrets: RandomToken: non-positive length")
	}
	b := make([]byte, nBytes)
	// crypto/rand.Read never fails; on a broken system it crashes the program
	// rather than hand out a predictable secret.
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Equal reports whether a and b are equal in time that depends on neither
// their contents nor their lengths. Use it for every comparison involving a
// secret.
func Equal(a, b string) bool {
	// subtle.ConstantTimeCompare returns early on a length mismatch; comparing
	// fixed-size digests hides the length of the secret as well.
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}
