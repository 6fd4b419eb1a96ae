// Package pgstore is a go402 store kept in PostgreSQL, with a ledger of
// every credit that moves: the system of record of a paid API.
//
// [Migrate] creates its tables and SQL functions in a schema of the
// application's choice (never at request time); [New] returns a [Store] on
// a pgxpool.Pool:
//
//	if err := pgstore.Migrate(ctx, pool, "go402"); err != nil { ... }
//	s, err := pgstore.New(pool, &pgstore.Options{Schema: "go402"})
//	defer s.Close()
//
// # Money
//
// Every spend, refund and top-up is one call of a SQL function, one round
// trip, that locks the account's row, applies a due refill, moves the
// credits and appends the ledger entries in one transaction, by the
// database server's clock: spends from any number of processes admit
// exactly as many as the balance covers.
//
// The ledger (table ledger) has one row per debit, refund, top-up, refill
// and adjustment, with the balance after it, the route, the key's display
// prefix and an operation ID, unique per kind, so the same operation
// never moves credits twice. PutAccount and UpdateAccount record a change
// of balance (a new account's whole balance) as an "adjust" entry, so an
// account's balance is always the sum of its ledger. Read it with
// [Store.Entries].
//
// [Store.UsageOutbox] reads the ledger's debits, net of their refunds, as
// the usage a reporter sends to a payment provider, and refunds made after
// a report as corrections of it.
//
// When the answer to a spend is lost (timeout, broken connection), Spend
// fails, so the middlewares answer 503 and serve nothing, and the Store
// cancels the operation in the background until the database confirms:
// a debit that committed is refunded, one still in flight is refused when
// it arrives. A process that stops before then leaves the debit standing.
//
// # Lookups
//
// Lookups are cached in the process ([Options.LookupTTL]). Triggers announce
// every change of a key or of an account's descriptive fields with NOTIFY
// on a channel named after the schema, and each Store LISTENs on a
// connection of its own, so a revoked key is refused by every replica
// within moments. If that connection drops, the Store reconnects and then
// empties its cache; until then cached lookups live for LookupTTL.
//
// Keys are stored as their SHA-256 digest and display prefix only.
package pgstore
