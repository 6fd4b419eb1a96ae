// Package admin is go402's admin API: an [http.Handler] over a store that
// implements [store.Admin], for operators and billing integrations to
// manage accounts, API keys and credits over HTTP, with JSON in and out,
// errors as RFC 9457 problem details, and an OpenAPI 3.1 document at
// GET /openapi.json.
//
//	auth, err := admin.BearerTokens(os.Getenv("GO402_ADMIN_TOKEN"))
//	h, err := admin.New(st, auth, nil)
//	mux.Handle("/admin/", http.StripPrefix("/admin", h))
//
// # Routes
//
//	GET   /accounts?after=&limit=               list accounts in order of ID
//	POST  /accounts                             create an account
//	GET   /accounts/{id}                        read one
//	PATCH /accounts/{id}                        change plan, status, features, period end, rate limit, metadata, spend cap, thresholds
//	GET   /accounts/{id}/keys                   its keys: display prefix, digest, last use — never the key
//	POST  /accounts/{id}/keys                   issue a key: the raw key is in this response only
//	POST  /accounts/{id}/keys/{key}/revoke      revoke at once ({key} is the digest in hex)
//	POST  /accounts/{id}/keys/{key}/rotate      a successor; the old key works for overlap_seconds
//	POST  /accounts/{id}/credits                top up or adjust, with an operation_id
//	GET   /accounts/{id}/ledger                 ledger entries, where the store keeps a ledger
//	GET   /console                              operator console: accounts, recent refusals (HTML)
//	GET   /console/accounts/{id}                an account, its keys, ledger and refusals (HTML)
//
// # Access
//
// Every route but the OpenAPI document needs the caller-supplied
// [Authenticator] to accept the request; [New] refuses to build a handler
// without one. [BearerTokens] is a ready one. An API key never reaches it:
// a request with an X-API-Key header, or whose bearer token is a key of the
// store, is refused with 403 first.
//
// # Credits and operation IDs
//
// A top-up or adjustment carries an operation_id, passed to the store with
// [store.WithOperation]. A store that keeps a [store.Ledger] applies an
// operation at most once itself. For any other store the Handler remembers
// the last Options.OperationMemory operations (10,000 by default) in this
// process: a retry of one of them moves nothing and gets the first answer
// again (with "replayed": true), one still being applied gets 409, and an
// ID reused for another account, kind or amount gets 422. An operation
// older than that memory, or retried against another process or after a
// restart, would be applied again: give such stores a ledger, or keep
// retries short.
//
// # Keys
//
// A rotation issues a new key with the old key's label and lets the old key
// work until now plus overlap_seconds by Options.Clock (it then fails with
// 401 invalid_token), or revokes it at once when the overlap is zero. A
// revoked key stops authenticating at once on this process; on other
// replicas within the store's documented bound (redisstore: its
// invalidation announcement, at worst its LookupTTL).
//
// # Last use
//
// A [Recorder], given to paywall's Options.OnDecision as its Record method,
// notes the time of each authenticated request in memory and writes the
// latest per key with one TouchKeys call each flush ([Recorder.Run]), never
// a store write per request. Key listings show the stored time, merged
// with the uses the Recorder has not flushed yet when Options.Recorder is
// set.
//
// # Console
//
// GET /console is a small read-only HTML page for operators — accounts with
// balance, plan and status, a page per account with its keys by display
// prefix, its ledger and its recent refusals (kept by the Recorder, the
// last 200) — plain HTML and CSS, no script. It needs the same
// credentials as the rest, so a browser reaches it through a proxy that
// adds them, or an Authenticator that reads the operator's session.
package admin
