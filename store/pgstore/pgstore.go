package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go402/go402/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Interfaces the Store implements.
var (
	_ store.Store    = (*Store)(nil)
	_ store.Refunder = (*Store)(nil)
	_ store.Admin    = (*Store)(nil)
	_ store.Ledger   = (*Store)(nil)
)

// Defaults for the zero fields of [Options], and the schema [Migrate] uses
// when given none.
const (
	DefaultSchema          = "go402"
	DefaultTimeout         = time.Second
	DefaultLookupTTL       = 30 * time.Second
	DefaultNegativeTTL     = time.Second
	DefaultLookupCacheSize = 65536
)

// Options configures a [Store]. A nil *Options, and the zero value of each
// field, means the documented default.
type Options struct {
	// Schema is the PostgreSQL schema holding the store's tables, made by
	// [Migrate]. Default [DefaultSchema] ("go402").
	Schema string

	// Timeout bounds every query, on top of the caller's context. A query
	// that has not answered by then fails with an error wrapping
	// [context.DeadlineExceeded], which the middlewares treat as the store
	// being unavailable (and a spend is then cancelled, see [Store.Spend]).
	// Default [DefaultTimeout] (1s).
	Timeout time.Duration

	// LookupTTL is how long [Store.Lookup] caches a found key and its
	// account in this process. Changes of keys and accounts are announced
	// with NOTIFY and reach every Store within moments; LookupTTL bounds
	// how long one is missed while the listening connection is down.
	// Default [DefaultLookupTTL] (30s); negative disables the cache.
	LookupTTL time.Duration

	// NegativeTTL is how long an unknown key is remembered as unknown.
	// Default [DefaultNegativeTTL] (1s); negative disables it.
	NegativeTTL time.Duration

	// LookupCacheSize caps the number of cached lookups. Default
	// [DefaultLookupCacheSize].
	LookupCacheSize int

	// Clock stamps the CreatedAt of keys made by [Store.CreateKey] and
	// times the lookup cache. Balances, refills and the ledger use the
	// database server's clock. Default time.Now.
	Clock func() time.Time
}

// Store is a [store.Store] kept in PostgreSQL and shared by every process
// using the same database and schema. It implements [store.Refunder],
// [store.Admin] and [store.Ledger] too: every spend, refund and top-up is one
// call of a SQL function — one round trip — that locks the account's row,
// applies a due refill, moves the credits and appends the ledger rows
// together. See the package documentation for the guarantees.
//
// A Store is safe for concurrent use. It runs two goroutines (the
// notification listener and the canceller of lost operations), stopped by
// [Store.Close]; closing the pool is the caller's business.
type Store struct {
	pool    *pgxpool.Pool
	schema  string
	sql     statements
	timeout time.Duration
	now     func() time.Time
	cache   *lookupCache

	stop     context.CancelFunc
	done     sync.WaitGroup
	cancels  *cancelQueue
	listener listenerState
}

// listenerState is what tests and [Store.Listening] see of the listener.
type listenerState struct {
	live     atomic.Bool  // LISTEN in effect now
	sessions atomic.Int64 // connections on which LISTEN succeeded
	pid      atomic.Uint32
}

// New returns a Store on pool, in the schema of opts (which [Migrate] must
// have made). It does not wait for the database: one that is down shows up
// as errors from the Store's methods, and the Store recovers by itself.
func New(pool *pgxpool.Pool, opts *Options) (*Store, error) {
	if pool == nil {
		return nil, errors.New("pgstore: nil pool")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Store{
		pool:    pool,
		schema:  o.Schema,
		sql:     newStatements(o.Schema),
		timeout: o.Timeout,
		now:     o.Clock,
		cache:   newLookupCache(o.LookupCacheSize, o.LookupTTL, o.NegativeTTL),
		stop:    stop,
		cancels: newCancelQueue(),
	}
	s.done.Add(2)
	go func() { defer s.done.Done(); s.listen(ctx) }()
	go func() { defer s.done.Done(); s.runCancels(ctx) }()
	return s, nil
}

// setDefaults checks o and replaces its zero fields by their defaults.
func (o *Options) setDefaults() error {
	switch {
	case o.Timeout < 0:
		return fmt.Errorf("pgstore: Timeout must be >= 0, got %v", o.Timeout)
	case o.LookupCacheSize < 0:
		return fmt.Errorf("pgstore: LookupCacheSize must be >= 0, got %d", o.LookupCacheSize)
	}
	if o.Schema == "" {
		o.Schema = DefaultSchema
	}
	if err := validSchema(o.Schema); err != nil {
		return err
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.LookupTTL == 0 {
		o.LookupTTL = DefaultLookupTTL
	}
	if o.NegativeTTL == 0 {
		o.NegativeTTL = DefaultNegativeTTL
	}
	if o.LookupCacheSize == 0 {
		o.LookupCacheSize = DefaultLookupCacheSize
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return nil
}

// Close stops the Store's goroutines, first trying once more, for up to
// [Options.Timeout], to cancel the operations whose answer was lost.
func (s *Store) Close() error {
	s.flushCancels()
	s.stop()
	s.done.Wait()
	return nil
}

// Listening reports whether the Store is receiving the notifications that
// invalidate its lookup cache; while it is not, cached lookups live for
// [Options.LookupTTL].
func (s *Store) Listening() bool { return s.listener.live.Load() }

// bounded returns ctx bounded by the Store's timeout.
func (s *Store) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// operation returns the operation of ctx, or a new one with a unique ID.
func operation(ctx context.Context) (store.Operation, bool) {
	if op, ok := store.OperationFrom(ctx); ok && op.ID != "" {
		return op, true
	}
	return store.Operation{ID: newOperationID()}, false
}

// operationPrefix and operationSeq make the IDs of operations that come
// with none: 128 random bits per process and a counter, unique without a
// call to the random source per operation.
var (
	operationPrefix = "go402:" + randomID() + ":"
	operationSeq    atomic.Uint64
)

// newOperationID returns a new unique operation ID.
func newOperationID() string {
	return operationPrefix + strconv.FormatUint(operationSeq.Add(1), 36)
}

// randomID returns 128 random bits in hex.
func randomID() string {
	var b [16]byte
	rand.Read(b[:]) //nolint:errcheck // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// SQLSTATEs the store's functions raise.
const (
	codeNotFound   = "P0002"
	codeCancelled  = "P0003"
	codeOverflow   = "22003"
	codeForeignKey = "23503"
)

// errCancelled means an operation was cancelled because its answer was lost.
var errCancelled = errors.New("pgstore: operation cancelled after its answer was lost")

// wrap turns a database error (or nil) into the store's: not found and overflow
// wrap the sentinel errors of package store, others say what failed.
func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case codeNotFound, codeForeignKey:
			return fmt.Errorf("pgstore: %s: %w", what, store.ErrNotFound)
		case codeOverflow:
			return fmt.Errorf("pgstore: %s: balance would overflow: %w", what, store.ErrInvalidAmount)
		case codeCancelled:
			return fmt.Errorf("pgstore: %s: %w", what, errCancelled)
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("pgstore: %s: %w", what, store.ErrNotFound)
	}
	return fmt.Errorf("pgstore: %s: %w", what, err)
}

// answerLost reports whether err leaves unknown whether the statement
// committed: no answer came from the server, though it may have been sent.
func answerLost(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return false
	}
	return !pgconn.SafeToRetry(err)
}

// maxIDLength is the longest account ID.
const maxIDLength = 256

// checkAccountID refuses an ID no account can have, as not found.
func checkAccountID(what, id string) error {
	if id == "" || len(id) > maxIDLength {
		return fmt.Errorf("pgstore: %s: account ID must be 1 to %d bytes: %w", what, maxIDLength, store.ErrNotFound)
	}
	return nil
}
