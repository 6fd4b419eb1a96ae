package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go402/go402/store"
	"github.com/redis/go-redis/v9"
)

// Interfaces the Store implements.
var (
	_ store.Store         = (*Store)(nil)
	_ store.Refunder      = (*Store)(nil)
	_ store.Buckets       = (*Store)(nil)
	_ store.BucketSpender = (*Store)(nil)
)

// Defaults for the zero fields of [Options].
const (
	DefaultPrefix          = "go402:"
	DefaultTimeout         = time.Second
	DefaultLookupTTL       = 5 * time.Minute
	DefaultNegativeTTL     = time.Second
	DefaultLookupCacheSize = 65536
	DefaultOperationTTL    = time.Minute
)

// Options configures a [Store]. A nil *Options, and the zero value of each
// field, means the documented default.
type Options struct {
	// Prefix starts the name of every Redis key the store uses, so several
	// applications can share one Redis. It must not contain '{' or '}',
	// which would change the keys' hash slots. Default [DefaultPrefix]
	// ("go402:").
	Prefix string

	// Timeout bounds every call to Redis, on top of the caller's context.
	// A call that has not finished by then fails with an error wrapping
	// [context.DeadlineExceeded], which the middlewares treat as the store
	// being unavailable. It is the line between a slow Redis and a broken
	// one: a burst queues for the client's connections, so keep it well
	// above the latency of a busy Redis. Default [DefaultTimeout] (1s).
	Timeout time.Duration

	// LookupTTL is how long [Store.Lookup] caches a found key and its
	// account in this process. A change made through any Store on the same
	// Redis and Prefix — a key put or revoked, an account put — is
	// announced on a Redis channel and seen by every replica within a
	// moment; LookupTTL bounds how long a change is missed when that
	// channel is down, or when it is made directly in Redis. Balances are
	// not affected: spending always reads Redis. Default
	// [DefaultLookupTTL] (5m); a negative value disables the cache.
	LookupTTL time.Duration

	// NegativeTTL is how long an unknown key is remembered as unknown, so
	// that a flood of invalid keys does not reach Redis. A key created on
	// another replica authenticates here at the latest NegativeTTL after a
	// failed attempt with it. Default [DefaultNegativeTTL] (1s); a negative
	// value disables negative caching.
	NegativeTTL time.Duration

	// LookupCacheSize caps the number of cached lookups, found and unknown
	// together. At the cap, expired entries are dropped and, if that is not
	// enough, an arbitrary eighth of the entries. Default
	// [DefaultLookupCacheSize].
	LookupCacheSize int

	// OperationTTL is how long Redis keeps the marker of each spend, by
	// which a spend whose answer was lost is cancelled (see the package
	// documentation). A marker costs about 100 bytes of Redis memory per
	// spend for this long. Default [DefaultOperationTTL] (1m); at least
	// a second.
	OperationTTL time.Duration

	// Clock returns the current time. It times the lookup cache and
	// stamps the CreatedAt of keys made by [Store.CreateKey], nothing else.
	// Balances, refills and token buckets use the Redis server's clock
	// (TIME), so that all replicas agree. Default time.Now.
	Clock func() time.Time
}

// Store is a [store.Store] kept in Redis, shared by every replica that uses
// the same Redis and [Options.Prefix]. Besides Store it implements
// [store.Refunder], [store.Admin], [store.Buckets] and
// [store.BucketSpender]: every spend, refund, top-up and token-bucket take is
// one Lua script — one round trip — evaluated atomically on the Redis
// server with the server's clock.
//
// Keys of one account share a hash tag, so all scripts work unchanged on
// Redis Cluster; see the package documentation for the key layout.
//
// A Store is safe for concurrent use. It runs two goroutines, stopped by
// [Store.Close]; closing the client is the caller's business.
type Store struct {
	rdb         redis.UniversalClient
	prefix      string
	timeout     time.Duration
	lookupTTL   time.Duration
	negativeTTL time.Duration
	now         func() time.Time
	cache       *lookupCache
	opTTL       time.Duration
	ttlArg      any // the scripts' marker TTL argument, in milliseconds
	ops         *ops
	oneTrip     bool // lookups may read the key and its account in one script

	// The subscription to invalidations (see subscribe.go).
	channel  string
	subStop  context.CancelFunc
	subDone  chan struct{}
	subLive  atomic.Bool  // subscribed now
	subCount atomic.Int64 // subscriptions established

	// scriptClock, set only by tests, replaces the Redis server's clock in
	// the scripts.
	scriptClock func() time.Time
}

// New returns a Store on client, which may be a single-node, Sentinel
// (failover) or Cluster client. It does not wait for Redis: a Redis that is
// down shows up as errors from the Store's methods, and the Store recovers
// by itself when Redis returns. It starts the Store's background work (see
// [Store.Close]).
//
// The client must honour context deadlines, or a stalled Redis could hold a
// call past [Options.Timeout]: New returns an error for a *redis.Client,
// *redis.ClusterClient or *redis.Ring whose options do not set
// ContextTimeoutEnabled. It also reports a nil client and invalid options.
func New(client redis.UniversalClient, opts *Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: nil client")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if !contextTimeoutEnabled(client) {
		return nil, errors.New("redisstore: the client must set ContextTimeoutEnabled: true in its options, " +
			"or a stalled Redis can hold calls past Options.Timeout")
	}
	o.setDefaults()
	_, single := client.(*redis.Client)
	s := &Store{
		rdb:         client,
		prefix:      o.Prefix,
		timeout:     o.Timeout,
		lookupTTL:   o.LookupTTL,
		negativeTTL: o.NegativeTTL,
		now:         o.Clock,
		cache:       newLookupCache(o.LookupCacheSize),
		opTTL:       o.OperationTTL,
		ttlArg:      strconv.FormatInt(o.OperationTTL.Milliseconds(), 10),
		ops:         newOps(),
		oneTrip:     single,
		channel:     o.Prefix + "invalidate",
	}
	go s.retryCancels()
	s.startSubscription()
	return s, nil
}

// validate reports the first invalid option.
func (o *Options) validate() error {
	switch {
	case strings.ContainsAny(o.Prefix, "{}"):
		return fmt.Errorf("redisstore: Prefix must not contain '{' or '}', got %q", o.Prefix)
	case o.Timeout < 0:
		return fmt.Errorf("redisstore: Timeout must be >= 0, got %v", o.Timeout)
	case o.LookupCacheSize < 0:
		return fmt.Errorf("redisstore: LookupCacheSize must be >= 0, got %d", o.LookupCacheSize)
	case o.OperationTTL != 0 && o.OperationTTL < time.Second:
		return fmt.Errorf("redisstore: OperationTTL must be at least 1s, got %v", o.OperationTTL)
	}
	return nil
}

// setDefaults replaces the zero options by their defaults.
func (o *Options) setDefaults() {
	setDefault(&o.Prefix, DefaultPrefix)
	setDefault(&o.Timeout, DefaultTimeout)
	setDefault(&o.LookupTTL, DefaultLookupTTL)
	setDefault(&o.NegativeTTL, DefaultNegativeTTL)
	setDefault(&o.LookupCacheSize, DefaultLookupCacheSize)
	setDefault(&o.OperationTTL, DefaultOperationTTL)
	if o.Clock == nil {
		o.Clock = time.Now
	}
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// contextTimeoutEnabled reports whether client applies context deadlines to
// its network calls, as far as can be told from its options. Clients of
// other types (wrappers) are trusted.
func contextTimeoutEnabled(client redis.UniversalClient) bool {
	switch c := client.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return true
}

// AccountRedisKey returns the name of the Redis hash that holds the account
// with the given ID: the prefix, then the hash tag {acct:ID}, then
// ":account".
func (s *Store) AccountRedisKey(accountID string) string {
	return s.prefix + "{acct:" + accountID + "}:account"
}

// APIKeyRedisKey returns the name of the Redis hash that holds the API key
// with digest d: the prefix and the hash tag {key:HEX}, HEX being the
// digest in hexadecimal. Raw keys are never stored.
func (s *Store) APIKeyRedisKey(d store.Digest) string {
	return s.prefix + "{key:" + d.String() + "}"
}

// BucketRedisKey returns the name of the Redis hash that holds the token
// bucket b. An account's bucket (b.Account set) is the field
// "bucket:"+b.Key of the account's hash ([Store.AccountRedisKey]), which
// lets [Store.SpendWithTokens] decide with one read and one write. Any
// other bucket is the field "bucket" of its own hash: the prefix, the hash
// tag {KEY} (b.Key), then ":bucket".
func (s *Store) BucketRedisKey(b store.Bucket) string {
	if b.Account != "" {
		return s.AccountRedisKey(b.Account)
	}
	return s.prefix + "{" + b.Key + "}:bucket"
}

// serverClock is the scripts' first argument that has them read the
// server's clock; held in an interface once, it costs a call nothing.
var serverClock any = ""

// timeArg returns the scripts' first argument: empty, so that they read the
// server's clock, unless a test set scriptClock.
func (s *Store) timeArg() any {
	if s.scriptClock == nil {
		return serverClock
	}
	return strconv.FormatInt(s.scriptClock().UnixMicro(), 10)
}

// withTimeout bounds a call by the store's timeout.
func (s *Store) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// backendError wraps a Redis error for operation op. It never includes a
// raw key: the store never handles one outside CreateKey.
func backendError(op string, err error) error {
	return fmt.Errorf("redisstore: %s: %w", op, err)
}
