package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"time"

	"github.com/go402/go402/internal/keyprefix"
)

// Digest is the SHA-256 digest of a raw API key: all that stores keep.
type Digest [sha256.Size]byte

// DigestOf returns the digest of the raw key.
func DigestOf(raw string) Digest { return sha256.Sum256([]byte(raw)) }

// String returns the digest in lower-case hexadecimal.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// MarshalText encodes the digest as hexadecimal.
func (d Digest) MarshalText() ([]byte, error) { return hex.AppendEncode(nil, d[:]), nil }

// UnmarshalText decodes a hexadecimal digest.
func (d *Digest) UnmarshalText(text []byte) error {
	if hex.DecodedLen(len(text)) != len(d) {
		return errorf("digest must be %d hex digits, got %d", 2*len(d), len(text))
	}
	if _, err := hex.Decode(d[:], text); err != nil {
		return errorf("digest: %v", err)
	}
	return nil
}

// Key is an API key as a store knows it.
type Key struct {
	Digest Digest `json:"digest"` // of the raw key
	// Prefix is the display form of the key made by [NewKey], such as
	// "sk_live_ab12". The stores of this module cut a longer Prefix to
	// that form, so what they hold is safe to show in dashboards and logs.
	Prefix    string    `json:"prefix"`
	AccountID string    `json:"account_id"`          // the account the key belongs to
	Revoked   bool      `json:"revoked,omitempty"`   // disabled: it no longer authenticates
	ExpiresAt time.Time `json:"expires_at,omitzero"` // when it stops authenticating; zero: never
	CreatedAt time.Time `json:"created_at,omitzero"` // when it was created, if known
	// LastUsedAt is when the key last authenticated a request, as far as
	// the store was told ([Admin].TouchKeys): batched, so minutes behind.
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// validate reports the first problem of k, or nil, and cuts its Prefix.
func (k *Key) validate() error {
	k.Prefix = keyprefix.Clamp(k.Prefix)
	switch {
	case k.Digest == Digest{}:
		return errorf("key digest must not be zero")
	case k.AccountID == "":
		return errorf("key account ID must not be empty")
	case len(k.AccountID) > maxIDLength:
		return errorf("key account ID longer than %d bytes", maxIDLength)
	}
	return nil
}

// NewKey returns the Key of accountID for an existing raw key, such as a fixed
// demo key. Its display prefix is the key's label — up to the last '_' among
// its first 8 characters, such as "sk_live_" — and the 4 characters after it
// ("sk_live_ab12"), or the label alone if fewer than 8 follow: at most 12
// characters, never the whole key, and at most 4 of the secret after a label of
// 8, even when the secret contains '_'.
func NewKey(raw, accountID string) Key {
	return Key{Digest: DigestOf(raw), Prefix: keyprefix.Of(raw), AccountID: accountID}
}

// keyEncoding spells the random part of generated keys.
var keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// maxPrefixLength is the longest prefix [GenerateKey] accepts.
const maxPrefixLength = 32

// GenerateKey returns a new random raw key: prefix (such as "sk_live_", or
// empty) and 32 lower-case letters and digits carrying 160 bits from
// crypto/rand. So that the key fits in an HTTP header, the prefix must be at
// most 32 bytes of printable ASCII without spaces; the error says if not,
// or if the random source failed.
func GenerateKey(prefix string) (string, error) {
	if len(prefix) > maxPrefixLength {
		return "", errorf("key prefix longer than %d bytes", maxPrefixLength)
	}
	for i := 0; i < len(prefix); i++ {
		if c := prefix[i]; c <= ' ' || c > '~' { // never quoted: it may be part of a key
			return "", errorf("key prefix: byte %d is not printable ASCII (or is a space)", i)
		}
	}
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", errorf("generate key: %w", err)
	}
	return prefix + keyEncoding.EncodeToString(b[:]), nil
}
