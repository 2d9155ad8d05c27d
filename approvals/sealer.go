package approvals

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of an encryption key: AES-256.
const KeySize = 32

// sealVersion prefixes every sealed value so the format can change without guessing.
const sealVersion = 1

// Sealer encrypts passes at rest with AES-GCM. The request ID is bound in as associated data, so
// a sealed pass copied onto another request does not open. The first key seals; every key opens,
// so keys can be rotated.
type Sealer struct {
	aeads []cipher.AEAD
	ids   []string
}

// NewSealer returns a Sealer for the given 32-byte keys; the first one seals.
func NewSealer(keys ...[]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("no encryption key")
	}
	s := &Sealer{}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("key %d is %d bytes, want %d", i+1, len(k), KeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		s.aeads = append(s.aeads, aead)
		sum := sha256.Sum256(append([]byte("tapbot key id\x00"), k...))
		s.ids = append(s.ids, hex.EncodeToString(sum[:4]))
	}
	return s, nil
}

// KeyIDs names the keys, first (sealing) key first, by a short fingerprint that reveals nothing
// of them, so logs can show which keys a replica has: two replicas whose lists differ cannot
// open each other's passes.
func (s *Sealer) KeyIDs() []string { return append([]string(nil), s.ids...) }

// NewRandomSealer returns a Sealer with a fresh random key, for the embedded store whose secrets
// die with the process anyway.
func NewRandomSealer() *Sealer {
	k := make([]byte, KeySize)
	_, _ = rand.Read(k)
	s, _ := NewSealer(k) // a KeySize key always makes a valid AES-GCM
	return s
}

// ParseKeys decodes a comma-separated list of base64 32-byte keys (TAP_ENCRYPTION_KEY).
func ParseKeys(list string) ([][]byte, error) {
	var keys [][]byte
	for i, part := range strings.Split(list, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(part)
		if err != nil {
			return nil, fmt.Errorf("key %d is not valid base64 (make one with: openssl rand -base64 32)", i+1)
		}
		if len(k) != KeySize {
			return nil, fmt.Errorf("key %d decodes to %d bytes, want %d (make one with: openssl rand -base64 32)", i+1, len(k), KeySize)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no key given (make one with: openssl rand -base64 32)")
	}
	return keys, nil
}

// Seal encrypts plaintext for the request id.
func (s *Sealer) Seal(id string, plaintext []byte) []byte {
	aead := s.aeads[0]
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out[0] = sealVersion
	_, _ = rand.Read(out[1:])
	return aead.Seal(out, out[1:1+aead.NonceSize()], plaintext, []byte(id))
}

// ErrUnsealable means no key opens a sealed value: wrong key, wrong request or tampering.
var ErrUnsealable = errors.New("sealed pass cannot be opened with any configured key")

// Open decrypts a value from Seal for the same request id.
func (s *Sealer) Open(id string, sealed []byte) ([]byte, error) {
	if len(sealed) < 1 || sealed[0] != sealVersion {
		return nil, ErrUnsealable
	}
	for _, aead := range s.aeads {
		n := aead.NonceSize()
		if len(sealed) < 1+n+aead.Overhead() {
			return nil, ErrUnsealable
		}
		if pt, err := aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(id)); err == nil {
			return pt, nil
		}
	}
	return nil, ErrUnsealable
}
