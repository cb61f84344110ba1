package store

import "fmt"

// Index purposes keep the keyed hashes of different kinds of secret apart, so one cannot be replayed as another.
const (
	IndexProxySecret     = "proxy-credential"
	IndexAPIClientSecret = "api-client"
	IndexRefreshToken    = "refresh-token"
)

// seal encrypts a secret bound to the row and field it belongs to, so a sealed value copied to another row or field
// does not open.
func (s *Store) seal(plain, aad string) (string, error) {
	b, err := s.sealer.Seal([]byte(plain), []byte(aad))
	if err != nil {
		return "", fmt.Errorf("seal %s: %w", aad, err)
	}
	return string(b), nil
}

func (s *Store) unseal(sealed, aad string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	b, err := s.sealer.Open([]byte(sealed), []byte(aad))
	if err != nil {
		return "", fmt.Errorf("unseal %s: %w", aad, err)
	}
	return string(b), nil
}

// SecretIndex is the keyed hash under which a secret of the given purpose is looked up.
func (s *Store) SecretIndex(purpose, secret string) string {
	return s.sealer.Index(purpose, []byte(secret))
}

// Seal encrypts a secret of another package (a configuration object's private key) bound to aad, with the store's
// keyring; Unseal opens it. Neither ever writes the plaintext anywhere.
func (s *Store) Seal(plain, aad string) (string, error) { return s.seal(plain, aad) }

// Unseal opens what Seal sealed under the same aad.
func (s *Store) Unseal(sealed, aad string) (string, error) { return s.unseal(sealed, aad) }
