package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
)

// Authenticator decides who may use the admin API: Authenticate returns
// nil for a request it accepts. The [Handler] refuses API keys of its
// store before calling it, so an API key never reaches it.
type Authenticator interface {
	Authenticate(r *http.Request) error
}

// AuthenticatorFunc adapts a function to [Authenticator].
type AuthenticatorFunc func(r *http.Request) error

// Authenticate calls f(r).
func (f AuthenticatorFunc) Authenticate(r *http.Request) error { return f(r) }

// minTokenLength is the shortest admin token [BearerTokens] accepts.
const minTokenLength = 24

// errBadToken is what a bearer-token Authenticator returns on refusal.
var errBadToken = errors.New("admin: missing or wrong bearer token")

// bearerTokens accepts requests carrying one of its tokens.
type bearerTokens struct{ digests [][sha256.Size]byte }

// BearerTokens returns an Authenticator that accepts a request whose
// Authorization header is "Bearer <token>" for one of tokens — several
// during a rotation of the admin token. It compares SHA-256 digests in
// constant time, so neither a token nor its length leaks through timing.
// Each token must be at least 24 bytes; none is an error.
func BearerTokens(tokens ...string) (Authenticator, error) {
	if len(tokens) == 0 {
		return nil, errors.New("admin: BearerTokens: no token")
	}
	b := &bearerTokens{}
	for i, t := range tokens {
		if len(t) < minTokenLength {
			return nil, fmt.Errorf("admin: BearerTokens: token %d is shorter than %d bytes", i, minTokenLength)
		}
		b.digests = append(b.digests, sha256.Sum256([]byte(t)))
	}
	return b, nil
}

// Authenticate implements [Authenticator].
func (b *bearerTokens) Authenticate(r *http.Request) error {
	token, ok := bearer(r)
	if !ok {
		return errBadToken
	}
	got := sha256.Sum256([]byte(token))
	match := 0
	for _, d := range b.digests {
		match |= subtle.ConstantTimeCompare(got[:], d[:])
	}
	if match != 1 {
		return errBadToken
	}
	return nil
}
