// Command postgres is the basic example's API on PostgreSQL: accounts, keys
// and credits in a database, every credit that moves in its ledger.
//
//	go run ./examples/postgres [-addr :8080] [-db URL] [-schema go402_example]
//	go run ./examples/postgres ledger acct_pro
//
// The database is POSTGRES_URL, or postgres://postgres@127.0.0.1:5432/test.
// The first command migrates the schema, seeds the demo accounts if absent
// and serves; the second prints an account's ledger.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go402/go402/limiter"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
	"github.com/go402/go402/store/pgstore"
	"github.com/jackc/pgx/v5/pgxpool"
)

// generateCost is what POST /generate costs.
const generateCost = 10

// demoKey is one of the keys the database is seeded with.
type demoKey struct {
	raw     string
	account store.Account
	revoked bool
}

var demoKeys = []demoKey{
	{"sk_test_pro", store.Account{ID: "acct_pro", Plan: "pro", Status: store.StatusActive, Features: []string{"reports"}, Balance: 1000}, false},
	{"sk_test_free", store.Account{ID: "acct_free", Plan: "free", Status: store.StatusActive}, false},
	{"sk_test_lapsed", store.Account{ID: "acct_lapsed", Plan: "pro", Status: store.StatusPastDue, Features: []string{"reports"}, Balance: 1000}, false},
	{"sk_test_revoked", store.Account{ID: "acct_revoked", Plan: "pro", Status: store.StatusActive, Features: []string{"reports"}, Balance: 1000}, true},
}

// seed puts the demo accounts that do not exist yet, and their keys, into s:
// a restart keeps the balances.
func seed(ctx context.Context, s *pgstore.Store) error {
	for _, k := range demoKeys {
		if _, err := s.Account(ctx, k.account.ID); errors.Is(err, store.ErrNotFound) {
			if err := s.PutAccount(ctx, k.account); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		key := store.NewKey(k.raw, k.account.ID)
		key.Revoked = k.revoked
		if err := s.PutKey(ctx, key); err != nil {
			return err
		}
	}
	return nil
}

// newHandler returns the basic example's routes behind a paywall on s.
func newHandler(s store.Store) (http.Handler, error) {
	pw, err := paywall.New(s, &paywall.Options{UpgradeURL: "/billing", PaymentURL: "/billing"})
	if err != nil {
		return nil, err
	}
	lim, err := limiter.New(1, 2, &limiter.Options{
		By:    limiter.ByAccount(),
		Plans: map[string]store.RateLimit{"pro": {Rate: 100, Burst: 200}},
	})
	if err != nil {
		return nil, err
	}
	active := pw.Require(paywall.Requirement{})
	reports := pw.Require(paywall.Requirement{Features: []string{"reports"}})
	mux := http.NewServeMux()
	mux.Handle("GET /hello", pw.Authenticate(lim.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := paywall.CallerFromContext(r.Context())
		writeJSON(w, map[string]any{"message": "hello, " + c.Account.ID, "plan": c.Account.Plan})
	}))))
	mux.Handle("GET /reports", pw.Authenticate(reports(lim.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := paywall.CallerFromContext(r.Context())
		writeJSON(w, map[string]any{"report": "usage report for " + c.Account.ID})
	})))))
	mux.Handle("POST /generate", pw.Authenticate(active(lim.Handler(pw.Charge(generateCost)(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			c, _ := paywall.CallerFromContext(r.Context())
			writeJSON(w, map[string]any{"result": "generated", "charged": c.Charged, "balance": c.Balance})
		}))))))
	mux.HandleFunc("GET /billing", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "Here customers would upgrade their plan or buy credits.\n")
	})
	return mux, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// printLedger writes every ledger entry of account id to w.
func printLedger(ctx context.Context, w io.Writer, s *pgstore.Store, id string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tAMOUNT\tBALANCE\tROUTE\tKEY\tOPERATION")
	q := store.LedgerQuery{Limit: 1000}
	for {
		page, err := s.Entries(ctx, id, q)
		if err != nil {
			return err
		}
		for _, e := range page {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%+d\t%d\t%s\t%s\t%s\n", e.Seq, e.Time.UTC().Format(time.RFC3339),
				e.Kind, e.Amount, e.Balance, e.Route, e.KeyPrefix, e.OperationID)
		}
		if len(page) < q.Limit {
			return tw.Flush()
		}
		q.After = page[len(page)-1].Seq
	}
}

// databaseURL is the default of -db.
func databaseURL() string {
	if u := os.Getenv("POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

func main() {
	addr := flag.String("addr", ":8080", "address to listen on")
	db := flag.String("db", databaseURL(), "PostgreSQL URL")
	schema := flag.String("schema", "go402_example", "schema of the store's tables")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: postgres [flags]            serve the example API\n"+
			"       postgres [flags] ledger ID  print an account's ledger\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *addr, *db, *schema, flag.Args()); err != nil {
		log.Fatal(err)
	}
}

// run migrates the schema, then serves or, with arguments "ledger ID",
// prints a ledger.
func run(ctx context.Context, addr, db, schema string, args []string) error {
	pool, err := pgxpool.New(ctx, db)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pgstore.Migrate(ctx, pool, schema); err != nil {
		return err
	}
	s, err := pgstore.New(pool, &pgstore.Options{Schema: schema})
	if err != nil {
		return err
	}
	defer s.Close()
	switch {
	case len(args) == 2 && args[0] == "ledger":
		return printLedger(ctx, os.Stdout, s, args[1])
	case len(args) != 0:
		flag.Usage()
		return errors.New("unknown arguments")
	}
	if err := seed(ctx, s); err != nil {
		return err
	}
	return serve(ctx, addr, s)
}

// serve serves the API on addr until ctx ends.
func serve(ctx context.Context, addr string, s *pgstore.Store) error {
	h, err := newHandler(s)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	base := "http://" + addr
	if strings.HasPrefix(addr, ":") {
		base = "http://localhost" + addr
	}
	fmt.Printf("go402 postgres example on %s; try:\n"+
		"  curl -i -X POST -H 'Authorization: Bearer sk_test_pro' %s/generate\n"+
		"  go run ./examples/postgres ledger acct_pro\n", base, base)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
