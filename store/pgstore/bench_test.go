package pgstore

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// benchClients is the number of concurrent clients of the throughput and
// latency benchmarks, for the store and pgbench alike.
const benchClients = 8

// BenchmarkSpend measures spends through the store by 8 clients, over
// 10,000 accounts and on one hot account, reporting transactions per
// second and the median and 99th percentile latency. With PGBENCH set and
// pgbench on the PATH, pgbench runs before and after, on the same server
// and schema with the same number of clients, b.N/2 transactions each
// time, a script of the statement the store sends (pgbenchScript); the
// mean of its two tps and the store's ratio to it are reported.
func BenchmarkSpend(b *testing.B) {
	for _, accounts := range []int{10000, 1} {
		b.Run(fmt.Sprintf("accounts=%d", accounts), func(b *testing.B) {
			pool := newPool(b, func(c *pgxpool.Config) { c.MaxConns = benchClients })
			schema := newSchema(b, pool)
			s := newStore(b, pool, Options{Schema: schema})
			seedBenchAccounts(b, pool, schema, accounts)
			pg1, ok := runPgbench(b, schema, accounts)
			b.ReportAllocs()
			b.ResetTimer()
			tps, lat := runSpends(b, s, accounts)
			b.StopTimer()
			b.ReportMetric(tps, "tps")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			if pg2, _ := runPgbench(b, schema, accounts); ok {
				pg := (pg1 + pg2) / 2
				b.ReportMetric(pg, "pgbench-tps")
				b.ReportMetric(tps/pg, "ratio")
			}
		})
	}
}

// seedBenchAccounts creates accounts bench0… with a balance that never
// runs out, in one statement.
func seedBenchAccounts(b *testing.B, pool *pgxpool.Pool, schema string, n int) {
	b.Helper()
	s := pgx.Identifier{schema}.Sanitize()
	_, err := pool.Exec(context.Background(), `INSERT INTO `+s+`.accounts (id, balance)
		SELECT 'bench' || i, 1000000000000000 FROM generate_series(0, $1 - 1) i`, n)
	if err != nil {
		b.Fatal(err)
	}
}

// runSpends makes b.N spends of 1 credit by benchClients goroutines, each
// on a random account among n, and returns the spends per second and
// their latencies, sorted.
func runSpends(b *testing.B, s *Store, n int) (float64, []time.Duration) {
	var next atomic.Int64
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range benchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
				id := "bench" + strconv.Itoa(int((i*7919+int64(c))%int64(n)))
				t0 := time.Now()
				if res, err := s.Spend(context.Background(), id, 1); err != nil || !res.OK {
					b.Errorf("Spend = %+v, %v", res, err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	tps := float64(b.N) / time.Since(start).Seconds()
	slices.Sort(lat)
	return tps, lat
}

// pgbenchScript is the spend the store sends, as a pgbench script: the
// same function call with a random account, cost 1 and a random
// operation ID, an empty route and key prefix.
const pgbenchScript = `\set aid random(0, %d)
\set op random(1, 9000000000000000000)
SELECT ok, balance, next_refill FROM %s.spend('bench' || :aid, 1, 'op' || :op, '', '');
`

// runPgbench runs b.N/2 spends with pgbench and returns its transactions
// per second, or false if PGBENCH is not set or pgbench not installed.
func runPgbench(b *testing.B, schema string, accounts int) (float64, bool) {
	path, err := exec.LookPath("pgbench")
	if err != nil || os.Getenv("PGBENCH") == "" {
		return 0, false
	}
	script := filepath.Join(b.TempDir(), "pgbench.sql")
	body := fmt.Sprintf(pgbenchScript, accounts-1, pgx.Identifier{schema}.Sanitize())
	if err := os.WriteFile(script, []byte(body), 0o600); err != nil {
		b.Fatal(err)
	}
	out, err := exec.Command(path, "-n", "-M", "prepared", "-c", strconv.Itoa(benchClients), "-j", "2",
		"-t", strconv.Itoa(max(1, b.N/2/benchClients)), "-f", script, postgresURL()).CombinedOutput()
	if err != nil {
		b.Fatalf("pgbench: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`tps = ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		b.Fatalf("pgbench printed no tps:\n%s", out)
	}
	tps, _ := strconv.ParseFloat(string(m[1]), 64)
	return tps, true
}

// BenchmarkLookupCached measures a lookup served by the cache.
func BenchmarkLookupCached(b *testing.B) {
	pool := newPool(b, nil)
	s := newStore(b, pool, Options{Schema: newSchema(b, pool)})
	d := seedKey(b, s, "acct", "sk_test_bench")
	lookup(b, s, d)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := s.Lookup(context.Background(), d); err != nil {
			b.Fatal(err)
		}
	}
}
