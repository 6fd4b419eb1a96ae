package pgstore

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// This file holds the test helpers: a pool of the PostgreSQL server at
// POSTGRES_URL, and a schema of each test's own, dropped when it ends.

// testTimeout is the store timeout of tests that are not about timeouts:
// generous, because 200 goroutines under -race queue for connections.
const testTimeout = 10 * time.Second

// postgresURL is the database the tests use.
func postgresURL() string {
	if u := os.Getenv("POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// unavailable fails the test under CI (env CI non-empty) and skips it
// elsewhere.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg + " (skipped; under CI, with CI set, this fails)")
}

// newPool returns a pool of the test database, configured by configure if
// not nil, closed when the test ends.
func newPool(t testing.TB, configure func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(postgresURL())
	if err != nil {
		t.Fatalf("POSTGRES_URL: %v", err)
	}
	if configure != nil {
		configure(cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		if pool != nil {
			pool.Close()
		}
		unavailable(t, "PostgreSQL at %s: %v", postgresURL(), err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// newSchema migrates a new schema of a random name, dropped when the test
// ends, and returns its name.
func newSchema(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	schema := "go402test_" + randomID()[:12]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Migrate(ctx, pool, schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// newStore returns a Store of schema on pool, closed when the test ends.
func newStore(t testing.TB, pool *pgxpool.Pool, opts Options) *Store {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = testTimeout
	}
	s, err := New(pool, &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// setClock makes the database clock of schema read a table holding t,
// and returns a function that moves it forward.
func setClock(t testing.TB, pool *pgxpool.Pool, schema string, at time.Time) func(time.Duration) {
	t.Helper()
	s := pgx.Identifier{schema}.Sanitize()
	ctx := context.Background()
	for _, q := range []string{
		"CREATE TABLE " + s + ".test_clock (t timestamptz NOT NULL)",
		"CREATE OR REPLACE FUNCTION " + s + ".clock() RETURNS timestamptz LANGUAGE sql STABLE AS $$ SELECT t FROM " + s + ".test_clock $$",
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, "INSERT INTO "+s+".test_clock VALUES ($1)", at); err != nil {
		t.Fatal(err)
	}
	return func(d time.Duration) {
		if _, err := pool.Exec(ctx, "UPDATE "+s+".test_clock SET t = t + $1::bigint * interval '1 microsecond'", d.Microseconds()); err != nil {
			t.Fatal(err)
		}
	}
}
