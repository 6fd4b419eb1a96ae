package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go402/go402/store/pgstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// testStore returns a store in a schema of the test's own, dropped when it
// ends; it skips without PostgreSQL unless CI is set.
func testStore(t *testing.T) *pgstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, databaseURL())
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skipf("PostgreSQL at %s: %v (skipped; under CI this fails)", databaseURL(), err)
	}
	t.Cleanup(pool.Close)
	schema := "go402example_" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	if err := pgstore.Migrate(ctx, pool, schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, err := pool.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		if err != nil {
			t.Error(err)
		}
	})
	s, err := pgstore.New(pool, &pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRoutesAndLedger(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	for range 2 { // seeding again keeps what exists
		if err := seed(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	h, err := newHandler(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, path, key string
		want              int
	}{
		{"GET", "/hello", "", http.StatusUnauthorized},
		{"GET", "/hello", "sk_test_pro", http.StatusOK},
		{"GET", "/reports", "sk_test_free", http.StatusPaymentRequired},
		{"GET", "/reports", "sk_test_lapsed", http.StatusPaymentRequired},
		{"GET", "/hello", "sk_test_revoked", http.StatusUnauthorized},
		{"POST", "/generate", "sk_test_pro", http.StatusOK},
		{"POST", "/generate", "sk_test_free", http.StatusPaymentRequired},
	} {
		r := httptest.NewRequest(c.method, c.path, nil)
		if c.key != "" {
			r.Header.Set("Authorization", "Bearer "+c.key)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.want {
			t.Errorf("%s %s with %q: %d, want %d: %s", c.method, c.path, c.key, w.Code, c.want, w.Body)
		}
	}
	var out bytes.Buffer
	if err := printLedger(ctx, &out, s, "acct_pro"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "adjust") || !strings.Contains(lines[2], "debit") ||
		!strings.Contains(lines[2], "-10") || !strings.Contains(lines[2], "POST /generate") {
		t.Errorf("ledger of acct_pro:\n%s\nwant a header, the adjust of 1000 and the debit of 10 by POST /generate", out.String())
	}
}
