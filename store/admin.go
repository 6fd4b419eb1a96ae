package store

import (
	"context"
	"time"
)

// Admin is implemented by stores that manage their own accounts and keys,
// as [Memory] does: what an admin API or a billing integration needs.
type Admin interface {
	// Account returns the account with any refill due now applied, or an
	// error wrapping [ErrNotFound].
	Account(ctx context.Context, id string) (Account, error)
	// PutAccount creates or replaces an account, balance included.
	PutAccount(ctx context.Context, a Account) error
	// CreateAccount stores a new account, balance included, or fails with
	// an error wrapping [ErrExists] and changes nothing if one with its ID
	// exists: of callers creating the same account at once, one wins.
	CreateAccount(ctx context.Context, a Account) error
	// UpdateAccount applies fn to the account atomically: no spend, top-up
	// or other update is lost between reading and writing it. Changes fn
	// makes to Balance are applied too. If fn returns an error, nothing
	// changes and UpdateAccount returns that error.
	UpdateAccount(ctx context.Context, id string, fn func(*Account) error) (Account, error)
	// Accounts lists accounts in order of ID, those with an ID after
	// after, at most limit (a store's default if ≤ 0).
	Accounts(ctx context.Context, after string, limit int) ([]Account, error)
	// TopUp adds a positive amount to the balance it returns.
	TopUp(ctx context.Context, accountID string, amount int64) (int64, error)
	// CreateKey makes, stores and returns a new key ([GenerateKey]) of an
	// existing account; the raw key is never available again.
	CreateKey(ctx context.Context, accountID, prefix string) (raw string, k Key, err error)
	// PutKey stores a key, replacing any with its digest, except that a
	// revoked key stays revoked: revocation is final.
	PutKey(ctx context.Context, k Key) error
	// Keys lists an account's keys, revoked and expired ones included.
	Keys(ctx context.Context, accountID string) ([]Key, error)
	// RevokeKey marks a key revoked, at once.
	RevokeKey(ctx context.Context, digest Digest) error
	// TouchKeys records when keys were last used: each key's LastUsedAt
	// becomes the later of its own and the time given. Unknown digests
	// are ignored. Callers batch uses, never one call per request.
	TouchKeys(ctx context.Context, uses map[Digest]time.Time) error
}
