// Package store defines go402's data model — accounts, keys, credits — and
// the [Store] interface the middlewares use.
//
// go402 comes with three stores:
//   - [Memory], for a single process, optionally saved to a JSON file;
//   - [Callback], from functions that reach the application's database,
//     with a bounded read-through cache;
//   - the Redis store of the nested module
//     github.com/go402/go402/store/redisstore, for replicas that share state.
//
// Each passes the conformance suite in store/storetest, which any other
// implementation can run too. Only the SHA-256 [Digest] of an API key is
// stored; the raw key exists only in the request and, once, in what
// CreateKey returns. A memory store with one demo key, used the way the
// middlewares use it:
//
//	m := store.NewMemory(nil)
//	m.PutAccount(ctx, store.Account{ID: "acct_1", Plan: "pro", Balance: 1000})
//	m.PutKey(ctx, store.NewKey("sk_test_pro", "acct_1"))
//
//	key, acct, err := m.Lookup(ctx, store.DigestOf("sk_test_pro")) // who is calling?
//	res, err := m.Spend(ctx, acct.ID, 10)                          // debit 10 credits, atomically
package store
