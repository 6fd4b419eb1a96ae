// Package redisstore is a go402 store kept in Redis, for services that run
// as several replicas: credits, periodic quotas and token buckets hold across
// all of them, a charge — or a rate-limit check and a charge together, with
// [Store.SpendWithTokens] — costs one round trip, and key lookups are cached
// in each process for a short TTL.
//
//	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
//		Addrs:                 []string{"127.0.0.1:6379"},
//		ContextTimeoutEnabled: true,
//	})
//	s, err := redisstore.New(rdb, nil)
//	if err != nil { … }
//	pw, err := paywall.New(s, nil)
//
// For the limit and the charge of a route to cost that one round trip, make
// the limiter, keyed by account on this store, the charge's RateLimit rather
// than a middleware in the chain:
//
//	lim, err := limiter.New(10, 20, &limiter.Options{By: limiter.ByAccount(), Store: s})
//	h := pw.Authenticate(pw.ChargeWith(paywall.ChargeOptions{Cost: 10, RateLimit: lim})(api))
//
// # Consistency
//
// Spend, Refund, TopUp, TakeTokens and SpendWithTokens are Lua scripts,
// each evaluated atomically on the Redis server in one round trip and timed
// by the server's clock (TIME), never a replica's: N replicas spending from
// a balance B at cost c admit exactly min(N, B/c) requests in total and the
// balance never goes below zero. Balances are exact 64-bit integers; they
// never pass through a floating-point number.
//
// Lookups are cached in-process (see [Options.LookupTTL], default 5s;
// unknown keys for [Options.NegativeTTL], default 1s): a key revoked or an
// account changed elsewhere is seen by every replica within that TTL.
// Balances are not cached.
//
// Redis replication is asynchronous: if a primary fails and a replica is
// promoted, spends acknowledged in the last moments before the failure may
// be lost (the credits come back to the customer), as with any counter kept
// in Redis. Run Redis with persistence (appendonly) if that matters.
//
// # Faults
//
// Every call is bounded by [Options.Timeout] (default 50ms) and fails with an
// error wrapping the Redis or context error — never containing a raw key —
// which the go402 middlewares answer with 503 store_unavailable, or let
// through if configured to fail open. The go-redis client reconnects by
// itself, so the store works again as soon as Redis does. [New] requires a
// client with ContextTimeoutEnabled, without which go-redis ignores context
// deadlines on its sockets.
//
// A call that times out may still take effect: a spend that reached a
// stalled Redis is carried out when Redis resumes, although its caller saw
// an error (and answered 503). Money is never created this way, and at most
// the cost of the requests refused with 503 in that moment is lost to the
// customer. Refunds are not retried.
//
// # Key layout
//
// With the default prefix "go402:":
//
//	go402:{acct:ID}:account       hash: balance, data (JSON: plan, status, features, …),
//	                              refill_amount, refill_every_s/_ns, refill_anchor_s/_ns,
//	                              refilled_at_s/_ns
//	go402:{acct:ID}:bucket:NAME   hash: tokens, ts — token bucket NAME of account ID
//	                              (Bucket.Account = ID, Key = NAME), in the account's slot
//	go402:{NAME}:bucket           hash: tokens, ts — any other token bucket NAME
//	                              (Bucket.Key, no Account)
//	go402:{key:HEX}               hash: account, prefix, revoked, expires_at, created_at —
//	                              an API key by the hex SHA-256 digest of the raw key
//
// A bucket expires once it would be full again, since a missing bucket is a
// full one.
//
// The text in braces is the Redis Cluster hash tag: an account and its
// bucket share a slot, so SpendWithTokens is one script on a Cluster too. A
// key record lives in another slot, so a lookup that misses the cache costs
// two round trips.
package redisstore
