// Package redisstore is a go402 store kept in Redis, for services that run
// as several replicas: credits, periodic quotas and token buckets hold across
// all of them, a charge — or a rate-limit check and a charge together, with
// [Store.SpendWithTokens] — costs one round trip, and key lookups are cached
// in each process and kept in step across replicas.
//
//	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
//		Addrs:                 []string{"127.0.0.1:6379"},
//		ContextTimeoutEnabled: true,
//	})
//	s, err := redisstore.New(rdb, nil)
//	if err != nil { … }
//	defer s.Close()
//	pw, err := paywall.New(s, nil)
//
// A route limited per account and charged decides both in one script:
//
//	lim, err := limiter.New(10, 20, &limiter.Options{By: limiter.ByAccount(), Store: s})
//	h := pw.Authenticate(lim.Handler(pw.Charge(10)(api)))
//
// A metered charge does too ([Store.HoldWithTokens]), and settles in one
// more.
//
// # Consistency
//
// Spend, Refund, TopUp, TakeTokens, SpendWithTokens, Hold, HoldWithTokens
// and Settle are Lua scripts, each evaluated atomically on the Redis server
// in one round trip and timed by the server's clock (TIME), never a
// replica's: N replicas spending from a balance B at cost c admit exactly
// min(N, B/c) requests in total and the balance never goes below zero.
// Balances are exact 64-bit integers; they never pass through a
// floating-point number.
//
// Redis replication is asynchronous: if a primary fails and a replica is
// promoted, spends acknowledged in the last moments before the failure may
// be lost (the credits come back to the customer), as with any counter kept
// in Redis. Run Redis with persistence (appendonly) if that matters.
//
// # The lookup cache
//
// [Store.Lookup] caches a found key and its account for [Options.LookupTTL]
// (default 5 minutes) and an unknown key for [Options.NegativeTTL] (default
// 1s). A cached lookup costs no round trip and no allocation; an uncached
// one costs one on a single Redis or Sentinel (one script reads the key and
// its account) and two on a Cluster, where they live in different slots.
//
// PutAccount, PutKey, CreateKey and RevokeKey announce the change on the
// Redis channel Prefix+"invalidate"; every Store on the same Redis and
// prefix subscribes to it and drops the lookups the change concerns, so a
// revoked key is refused everywhere within a moment (well under a second).
// A Store that loses its subscription subscribes again by itself, pinging a
// quiet one every second to notice a dead connection, and empties its cache
// on every (re)subscription, since it may have missed announcements. While
// it is not subscribed, a change reaches it when the cached lookup expires:
// LookupTTL is that fallback. Changes made to Redis directly, not through a
// Store, are seen only then. Balances are never served from the cache.
//
// # Faults
//
// Every call is bounded by [Options.Timeout] (default 1s) and fails with an
// error wrapping the Redis or context error — never containing a raw key —
// which the go402 middlewares answer with 503 store_unavailable, or let
// through if configured to fail open. The go-redis client reconnects by
// itself, so the store works again as soon as Redis does. [New] requires a
// client with ContextTimeoutEnabled, without which go-redis ignores context
// deadlines on its sockets.
//
// Money stays exact in both directions: a spend that returns an error has
// not debited the account, and no account is debited without a spend that
// returned success. Each Spend and SpendWithTokens is an operation with an
// id made by the Store; its script records the operation in a marker key
// (kept [Options.OperationTTL], default 1 minute, beside the account). When
// the answer is lost — a timeout, a broken connection, a stalled Redis — the
// Store cancels the operation by its id before returning the error: a
// script gives the credits back if the operation was applied and leaves a
// tombstone otherwise, so that the operation, reaching Redis later, does
// nothing. A retry by the client of the same operation is recognised and
// not charged twice. If Redis does not answer the cancel either, it waits
// in a queue of up to 10,000 cancels that a goroutine retries, with pauses
// growing to a second, until Redis answers. A cancel that finds no trace of
// its operation leaves the tombstone, which outlives any operation that
// reaches Redis within OperationTTL of it.
//
// What is not covered: a cancel dropped because the queue is full, or lost
// with the process (a crash, or [Store.Close] while Redis is still down),
// leaves the operation as Redis decided it — the customer may have paid
// for a request answered 503. An operation delayed in the network for
// longer than OperationTTL after its cancel ran is applied. Refunds and
// top-ups are not cancelled: a refund whose answer is lost may or may not
// have been made. Tokens taken by a lost TakeTokens are not given back.
// A failing call costs up to two Timeouts: the call, then the cancel.
//
// # Key layout
//
// With the default prefix "go402:":
//
//	go402:{acct:ID}:account     hash: balance, data (JSON: plan, status, features, …),
//	                            refill_amount, refill_every_s/_ns, refill_anchor_s/_ns,
//	                            refilled_at_s/_ns, and bucket:NAME ("TOKENS MICROS RATE BURST")
//	                            for each token bucket NAME of the account
//	go402:{acct:ID}:op:OPID     string: the credits of an operation, or "x" once
//	                            cancelled; expires after OperationTTL
//	go402:{NAME}:bucket         hash: bucket — any other token bucket NAME
//	                            (Bucket.Key, no Account); expires once full again
//	go402:{key:HEX}             hash: account, prefix, revoked, expires_at, created_at,
//	                            last_used_at — an API key by the hex SHA-256 digest of the raw key
//	go402:{acct:ID}:keys        set: the HEX digests of the account's keys, for Keys
//	go402:accounts              sorted set: every account ID, score 0, for Accounts
//
// The text in braces is the Redis Cluster hash tag: an account, its buckets
// and its operation markers share a slot, so a decision is one script on a
// Cluster too. An account's buckets never expire: there are a few per
// account, one per limit policy, and PutAccount keeps them.
package redisstore
