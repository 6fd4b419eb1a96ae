package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"strings"
	"time"
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
	b := make([]byte, hex.EncodedLen(len(d)))
	hex.Encode(b, d[:])
	return b, nil
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
	// Prefix is a short, non-secret display form such as "sk_live_ab12",
	// safe to show in dashboards and logs. See [DisplayPrefix].
	Prefix string `json:"prefix"`
	// AccountID is the account the key belongs to.
	AccountID string `json:"account_id"`
	// Revoked marks a key that has been disabled; it no longer authenticates.
	Revoked bool `json:"revoked,omitempty"`
	// ExpiresAt is when the key stops authenticating. The zero time means
	// never.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// CreatedAt is when the key was created, if known.
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// maxDisplayPrefixLength is the longest Key.Prefix that [Key.Validate]
// accepts.
const maxDisplayPrefixLength = 64

// Validate reports the first problem that makes k unusable, or nil: a zero
// Digest (which no raw key has), an empty or overlong AccountID, or a Prefix
// longer than 64 bytes or containing anything but printable ASCII without
// spaces.
func (k *Key) Validate() error {
	switch {
	case k.Digest == Digest{}:
		return errorf("key digest must not be zero")
	case k.AccountID == "":
		return errorf("key account ID must not be empty")
	case len(k.AccountID) > MaxIDLength:
		return errorf("key account ID longer than %d bytes", MaxIDLength)
	}
	return checkDisplayText("key display prefix", k.Prefix, maxDisplayPrefixLength)
}

// checkDisplayText reports an error if s is longer than max bytes or holds
// anything but printable ASCII other than space. The error never quotes s:
// it may be part of a key.
func checkDisplayText(what, s string, max int) error {
	if len(s) > max {
		return errorf("%s longer than %d bytes", what, max)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' {
			return errorf("%s: byte %d is not printable ASCII (or is a space)", what, i)
		}
	}
	return nil
}

// Expired reports whether the key has expired at now.
func (k *Key) Expired(now time.Time) bool {
	return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt)
}

// NewKey returns the Key for a raw key that already exists, for example one
// issued by another system or a fixed demo key: its digest and display
// prefix, belonging to accountID.
func NewKey(raw, accountID string) Key {
	return Key{Digest: DigestOf(raw), Prefix: DisplayPrefix(raw), AccountID: accountID}
}

// displayRandomChars is how many characters after the last '_' of a key's
// prefix are kept in its display form.
const displayRandomChars = 4

// DisplayPrefix returns the non-secret display form of a raw key: everything
// up to and including its last '_' followed by four more characters
// ("sk_live_ab12"), or the first four characters of a key without an
// underscore. The secret is taken to follow the last '_': if fewer than
// eight characters follow it, only the part up to and including it is shown
// ("sk_test_pro" shows "sk_test_"), and a key that ends in '_' shows
// nothing, so no key is ever displayed whole.
func DisplayPrefix(raw string) string {
	head := strings.LastIndexByte(raw, '_') + 1
	if len(raw)-head < 2*displayRandomChars {
		if head == len(raw) {
			return ""
		}
		return raw[:head]
	}
	return raw[:head+displayRandomChars]
}

// keyEncoding spells the random part of generated keys: lower-case letters
// and digits only, so the part never contains the '_' that ends a prefix.
var keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// MaxPrefixLength is the longest prefix [GenerateKey] accepts.
const MaxPrefixLength = 32

// GenerateKey returns a new random raw key: prefix (for example "sk_live_")
// followed by 32 lower-case letters and digits carrying 160 bits of
// randomness from crypto/rand. The prefix may be empty; otherwise it must be
// at most [MaxPrefixLength] bytes of printable ASCII without spaces, so the
// key fits in an HTTP header unchanged. GenerateKey returns an error for such
// a prefix or if the system's random source fails.
func GenerateKey(prefix string) (string, error) {
	if err := checkDisplayText("key prefix", prefix, MaxPrefixLength); err != nil {
		return "", err
	}
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", errorf("generate key: %w", err)
	}
	return prefix + keyEncoding.EncodeToString(b[:]), nil
}
