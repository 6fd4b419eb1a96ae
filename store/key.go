package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"time"

	"github.com/go402/go402/internal/keyprefix"
)

// Digest is the SHA-256 digest of a raw API key. Stores keep and index only
// digests; a raw key is never stored.
type Digest [sha256.Size]byte

// DigestOf returns the digest of the raw key.
func DigestOf(raw string) Digest {
	return sha256.Sum256([]byte(raw))
}

// String returns the digest in lower-case hexadecimal.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// MarshalText encodes the digest as hexadecimal.
func (d Digest) MarshalText() ([]byte, error) {
	return hex.AppendEncode(nil, d[:]), nil
}

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

// Key is an API key as a store knows it: its digest, a short display prefix
// that lets people recognise it, and the account it belongs to.
type Key struct {
	// Digest is the SHA-256 digest of the raw key.
	Digest Digest `json:"digest"`
	// Prefix is the display form of the key made by [NewKey], such as
	// "sk_live_ab12": at most 12 characters of the key, never all of it
	// (see [NewKey]). The stores of this module cut a longer Prefix to
	// that form wherever a key comes from, so what they hold is safe to
	// show in dashboards and logs.
	Prefix string `json:"prefix"`
	// AccountID is the account the key belongs to.
	AccountID string `json:"account_id"`
	// Revoked marks a key that has been disabled; it no longer authenticates.
	Revoked bool `json:"revoked,omitempty"`
	// ExpiresAt is when the key stops authenticating: it is expired at
	// ExpiresAt and after. The zero time means never.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// CreatedAt is when the key was created, if known.
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// validate reports the first problem that makes k unusable, or nil, and cuts
// its Prefix to a display prefix (see [Key.Prefix]).
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

// NewKey returns the Key for a raw key that already exists, for example one
// issued by another system or a fixed demo key: its digest and display
// prefix, belonging to accountID.
//
// The display prefix is the key's label — up to and including the last '_'
// among its first 8 characters, such as "sk_live_" — and the 4 characters
// after it ("sk_live_ab12"), or the label alone if fewer than 8 follow it.
// So it shows at most 12 characters of any key, never the whole key, and
// at most 4 characters of the secret after a label of 8 characters, even
// when the secret contains '_'.
func NewKey(raw, accountID string) Key {
	return Key{Digest: DigestOf(raw), Prefix: keyprefix.Of(raw), AccountID: accountID}
}

// keyEncoding spells the random part of generated keys: lower-case letters
// and digits only.
var keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// maxPrefixLength is the longest prefix [GenerateKey] accepts.
const maxPrefixLength = 32

// GenerateKey returns a new random raw key: prefix (for example "sk_live_")
// followed by 32 lower-case letters and digits carrying 160 bits of
// randomness from crypto/rand. The prefix may be empty; otherwise it must be
// at most 32 bytes of printable ASCII without spaces, so the key fits in an
// HTTP header unchanged. GenerateKey returns an error for such a prefix or
// if the system's random source fails.
func GenerateKey(prefix string) (string, error) {
	if len(prefix) > maxPrefixLength {
		return "", errorf("key prefix longer than %d bytes", maxPrefixLength)
	}
	for i := 0; i < len(prefix); i++ {
		if c := prefix[i]; c <= ' ' || c > '~' {
			// Never quote the prefix: it may be part of a key.
			return "", errorf("key prefix: byte %d is not printable ASCII (or is a space)", i)
		}
	}
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", errorf("generate key: %w", err)
	}
	return prefix + keyEncoding.EncodeToString(b[:]), nil
}
