package pgstore_test

import (
	"context"
	"fmt"
	"log"

	"github.com/go402/go402/store"
	"github.com/go402/go402/store/pgstore"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Example sets up the store, an account of 100 credits and a key for it,
// spends and reads the ledger. It needs PostgreSQL on 127.0.0.1, so it is
// not run as a test; the package's tests run the same steps.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	if err := pgstore.Migrate(ctx, pool, "go402"); err != nil { // at deployment
		log.Fatal(err)
	}
	s, err := pgstore.New(pool, &pgstore.Options{Schema: "go402"})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.PutAccount(ctx, store.Account{ID: "acme", Plan: "pro", Balance: 100}); err != nil {
		log.Fatal(err)
	}
	raw, _, err := s.CreateKey(ctx, "acme", "sk_live_")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("give the customer", raw) // the only time the raw key exists

	_, acct, err := s.Lookup(ctx, store.DigestOf(raw)) // cached in the process
	if err != nil {
		log.Fatal(err)
	}
	res, err := s.Spend(ctx, acct.ID, 10) // one round trip, with its ledger entry
	if err != nil {
		log.Fatal(err) // database down or slow: answer 503
	}
	entries, err := s.Entries(ctx, acct.ID, store.LedgerQuery{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.OK, res.Balance, len(entries)) // the adjust of 100, the debit of 10
}

// ExampleNew shows that New checks its options, and does not wait for the
// database, so this runs without one.
func ExampleNew() {
	pool, err := pgxpool.New(context.Background(), "postgres://127.0.0.1:1/none")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	_, err = pgstore.New(pool, &pgstore.Options{Schema: "billing", Timeout: -1})
	fmt.Println(err)
	s, err := pgstore.New(pool, &pgstore.Options{Schema: "billing"})
	fmt.Println(err)
	s.Close()
	// Output:
	// pgstore: Timeout must be >= 0, got -1ns
	// <nil>
}
