package pgstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go402/go402/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// spendOp debits cost from account under operation op and refunds refund
// of it, failing the test on error.
func spendOp(t testing.TB, s *Store, account, op string, cost, refund int64) {
	t.Helper()
	ctx := store.WithOperation(context.Background(), store.Operation{ID: op})
	if r, err := s.Spend(ctx, account, cost); err != nil || !r.OK {
		t.Fatalf("spend %s: %+v, %v", op, r, err)
	}
	if refund > 0 {
		refundOp(t, s, account, op, refund)
	}
}

// refundOp gives back amount of operation op's debit from account,
// failing the test on error.
func refundOp(t testing.TB, s *Store, account, op string, amount int64) {
	t.Helper()
	ctx := store.WithOperation(context.Background(), store.Operation{ID: op})
	if _, err := s.Refund(ctx, account, amount); err != nil {
		t.Fatalf("refund %s: %v", op, err)
	}
}

// newOutbox returns a usage outbox of s, failing the test on error.
func newOutbox(t testing.TB, s *Store, opts *UsageOptions) *UsageOutbox {
	t.Helper()
	o, err := s.UsageOutbox(opts)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// pendingIDs returns the ID:value of what o.Pending returns.
func pendingIDs(t testing.TB, o *UsageOutbox, limit int) ([]string, []store.Usage) {
	t.Helper()
	us, err := o.Pending(context.Background(), limit)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, u := range us {
		ids = append(ids, fmt.Sprintf("%s:%d", u.ID, u.Value))
	}
	return ids, us
}

// usageFixture is a schema with a controlled clock, a store with accounts
// of balance 1000, and an outbox of the store.
type usageFixture struct {
	pool    *pgxpool.Pool
	schema  string
	s       *Store
	o       *UsageOutbox
	advance func(time.Duration)
}

// newUsageFixture returns a usage fixture with the accounts and an
// outbox of opts.
func newUsageFixture(t *testing.T, opts UsageOptions, accounts ...string) *usageFixture {
	t.Helper()
	pool := newPool(t, nil)
	schema := newSchema(t, pool)
	f := &usageFixture{pool: pool, schema: schema}
	f.advance = setClock(t, pool, schema, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	f.s = newStore(t, pool, Options{Schema: schema})
	for _, a := range accounts {
		putAccount(t, f.s, a, 1000)
	}
	f.o = newOutbox(t, f.s, &opts)
	return f
}

func TestUsageOutboxSettlesNetsLeasesAndAcks(t *testing.T) {
	opts := UsageOptions{Settle: time.Minute, Lease: time.Minute, Keep: time.Hour}
	f := newUsageFixture(t, opts, "acct")
	pool, schema, s, advance := f.pool, f.schema, f.s, f.advance
	spendOp(t, s, "acct", "op1", 10, 0)
	spendOp(t, s, "acct", "op2", 5, 5) // refunded in full: never usage
	spendOp(t, s, "acct", "op3", 7, 3)
	a := f.o
	b := newOutbox(t, s, &opts)

	if ids, _ := pendingIDs(t, a, 10); len(ids) != 0 {
		t.Fatalf("before the settle delay: %v, want none", ids)
	}
	advance(61 * time.Second)
	ids, us := pendingIDs(t, a, 10)
	if fmt.Sprint(ids) != "[op1:10 op3:4]" {
		t.Fatalf("pending %v, want [op1:10 op3:4]", ids)
	}
	if ids, _ := pendingIDs(t, b, 10); len(ids) != 0 {
		t.Fatalf("another reader during the lease: %v, want none", ids)
	}
	if err := a.Ack(context.Background(), us[:1]); err != nil {
		t.Fatal(err)
	}
	if ids, _ := pendingIDs(t, a, 10); len(ids) != 0 {
		t.Fatalf("after acking op1, the lease holder reads %v, want none until its lease ends", ids)
	}
	advance(61 * time.Second) // a's lease lapses, as if it crashed
	ids, us = pendingIDs(t, b, 10)
	if fmt.Sprint(ids) != "[op3:4]" {
		t.Fatalf("after the lease: %v, want [op3:4]", ids)
	}
	if err := b.Ack(context.Background(), us); err != nil {
		t.Fatal(err)
	}
	for _, o := range []*UsageOutbox{a, b} {
		if ids, _ := pendingIDs(t, o, 10); len(ids) != 0 {
			t.Fatalf("after acking all: %v, want none", ids)
		}
	}
	// The floor passed every debit, and acknowledgements older than Keep
	// are gone.
	advance(time.Hour + time.Minute)
	if ids, _ := pendingIDs(t, a, 10); len(ids) != 0 {
		t.Fatalf("after Keep: %v, want none", ids)
	}
	var floor, maxSeq, acks int64
	sc := pgx.Identifier{schema}.Sanitize()
	err := pool.QueryRow(context.Background(), `SELECT (SELECT seq FROM `+sc+`.usage_floor WHERE consumer = 'stripe'),
		(SELECT max(seq) FROM `+sc+`.ledger WHERE kind = 'debit'), (SELECT count(*) FROM `+sc+`.usage_acks)`).
		Scan(&floor, &maxSeq, &acks)
	if err != nil || floor != maxSeq || acks != 0 {
		t.Fatalf("floor %d, last debit %d, acks %d, err %v; want floor at the last debit and no acks", floor, maxSeq, acks, err)
	}
}

func TestUsageOutboxConsumersAreIndependent(t *testing.T) {
	pool := newPool(t, nil)
	schema := newSchema(t, pool)
	s := newStore(t, pool, Options{Schema: schema})
	putAccount(t, s, "acct", 100)
	spendOp(t, s, "acct", "op1", 3, 0)
	a := newOutbox(t, s, &UsageOptions{Settle: time.Nanosecond, Consumer: "a"})
	b := newOutbox(t, s, &UsageOptions{Settle: time.Nanosecond, Consumer: "b"})
	_, us := pendingIDs(t, a, 10)
	if err := a.Ack(context.Background(), us); err != nil {
		t.Fatal(err)
	}
	if ids, _ := pendingIDs(t, b, 10); fmt.Sprint(ids) != "[op1:3]" {
		t.Fatalf("consumer b reads %v, want [op1:3]", ids)
	}
	if ids, _ := pendingIDs(t, a, 10); len(ids) != 0 {
		t.Fatalf("consumer a reads %v after its ack, want none", ids)
	}
}

func TestUsageOutboxReplicasReportEachUsageOnce(t *testing.T) {
	p1, p2 := newPool(t, nil), newPool(t, nil)
	schema := newSchema(t, p1)
	s1, s2 := newStore(t, p1, Options{Schema: schema}), newStore(t, p2, Options{Schema: schema})
	const n = 200
	putAccount(t, s1, "acct", 10*n)
	for i := range n {
		spendOp(t, s1, "acct", fmt.Sprintf("op%03d", i), 1+int64(i%5), 0)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for _, s := range []*Store{s1, s2} {
		o := newOutbox(t, s, &UsageOptions{Settle: time.Nanosecond, Lease: time.Hour})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				us, err := o.Pending(context.Background(), 7)
				if err != nil || len(us) == 0 {
					if err != nil {
						t.Error(err)
					}
					return
				}
				mu.Lock()
				for _, u := range us {
					seen[u.ID]++
				}
				mu.Unlock()
				if err := o.Ack(context.Background(), us); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d usages read, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("usage %s read %d times by the replicas, want once", id, c)
		}
	}
}

func TestUsageOutboxRefusesMistakes(t *testing.T) {
	s := new(Store)
	for _, o := range []UsageOptions{{Settle: -1}, {Lease: -time.Second}} {
		if _, err := s.UsageOutbox(&o); err == nil {
			t.Errorf("UsageOutbox(%+v) = nil error, want one", o)
		}
	}
}

func TestUsageOutboxCorrectsRefundsAfterTheReport(t *testing.T) {
	f := newUsageFixture(t, UsageOptions{Settle: time.Minute, Lease: time.Hour, Keep: 2 * time.Hour}, "acct")
	pool, schema, s, o, advance := f.pool, f.schema, f.s, f.o, f.advance
	ack := func(us []store.Usage) {
		t.Helper()
		if err := o.Ack(context.Background(), us); err != nil {
			t.Fatal(err)
		}
	}
	spendOp(t, s, "acct", "op1", 10, 0)
	spendOp(t, s, "acct", "op2", 8, 0)
	spendOp(t, s, "acct", "op3", 6, 0)
	advance(2 * time.Minute)
	_, us := pendingIDs(t, o, 2) // op1 and op2, read before their refunds
	ack(us[:1])
	refundOp(t, s, "acct", "op1", 4) // after its report
	refundOp(t, s, "acct", "op2", 8) // while it is being reported
	refundOp(t, s, "acct", "op3", 1) // before its report
	ids, got := pendingIDs(t, o, 10)
	if fmt.Sprint(ids) != "[op3:5]" {
		t.Fatalf("before the refunds settle: %v, want [op3:5] (its debit is settled)", ids)
	}
	ack(got)
	advance(2 * time.Minute)
	ids, got = pendingIDs(t, o, 10)
	if fmt.Sprint(ids) != "[op1:6]" || got[0].Revision != 1 || got[0].ReportedAt.IsZero() {
		t.Fatalf("pending %v (%+v), want the correction [op1:6]", ids, got)
	}
	ack(got)
	if ids, _ := pendingIDs(t, o, 10); len(ids) != 0 {
		t.Fatalf("while op2 is being reported: %v, want none", ids)
	}
	ack(us[1:]) // op2 reported as 8, after its refund settled
	ids, got = pendingIDs(t, o, 10)
	if fmt.Sprint(ids) != "[op2:0]" || got[0].Revision != 1 {
		t.Fatalf("pending %v, want the correction [op2:0]", ids)
	}
	ack(got)
	if ids, _ := pendingIDs(t, o, 10); len(ids) != 0 {
		t.Fatalf("after acking the corrections: %v, want none", ids)
	}
	us = got
	// A stale acknowledgement of an older revision changes nothing.
	ack([]store.Usage{{ID: "op1", Seq: us[0].Seq, Value: 10}})
	if ids, _ := pendingIDs(t, o, 10); len(ids) != 0 {
		t.Fatalf("after a stale ack: %v, want none", ids)
	}
	_, rf := floors(t, pool, schema)
	sc := pgx.Identifier{schema}.Sanitize()
	var maxSeq int64
	if err := pool.QueryRow(context.Background(), `SELECT max(seq) FROM `+sc+`.ledger WHERE kind = 'refund'`).Scan(&maxSeq); err != nil || rf != maxSeq {
		t.Fatalf("refund floor %d, last refund %d (%v); want equal", rf, maxSeq, err)
	}
}

// BenchmarkUsagePending reads 100 pending usages from a ledger of 100,000
// debits of which the last 1,000 are not yet reported.
func BenchmarkUsagePending(b *testing.B) {
	pool := newPool(b, nil)
	schema := newSchema(b, pool)
	s := newStore(b, pool, Options{Schema: schema})
	sc := pgx.Identifier{schema}.Sanitize()
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO ` + sc + `.ledger (at, account_id, kind, amount, balance, operation_id)
		 SELECT now() - interval '1 hour', 'acct' || (i % 100), 'debit', -1 - i % 5, 0, 'op' || i
		   FROM generate_series(1, 100000) i`,
		`INSERT INTO ` + sc + `.ledger (at, account_id, kind, amount, balance, operation_id)
		 SELECT now() - interval '1 hour', 'acct' || (i % 100), 'refund', 1, 0, 'op' || i
		   FROM generate_series(1, 100000, 97) i`,
		`INSERT INTO ` + sc + `.usage_floor (consumer, seq, refund_seq, xid, refund_xid)
		 VALUES ('stripe', 99000, (SELECT max(seq) FROM ` + sc + `.ledger),
		         pg_snapshot_xmin(pg_current_snapshot()), pg_snapshot_xmin(pg_current_snapshot()))`,
		`ANALYZE ` + sc + `.ledger`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	o := newOutbox(b, s, &UsageOptions{Lease: time.Microsecond}) // leases lapse at once: each read is the same
	b.ResetTimer()
	for b.Loop() {
		us, err := o.Pending(ctx, 100)
		if err != nil || len(us) != 100 {
			b.Fatalf("Pending: %d, %v", len(us), err)
		}
	}
}
