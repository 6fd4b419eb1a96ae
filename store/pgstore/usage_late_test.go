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

// heldTx is a transaction the test keeps open while the outbox reads and
// acknowledges what other transactions committed.
type heldTx struct {
	t  *testing.T
	tx pgx.Tx
	s  *Store
}

// hold begins a transaction on its own connection, rolled back when the
// test ends unless committed.
func hold(t *testing.T, pool *pgxpool.Pool, s *Store) *heldTx {
	t.Helper()
	tx, err := pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(context.Background()) }) //nolint:errcheck // after Commit, a no-op
	return &heldTx{t: t, tx: tx, s: s}
}

// spend debits cost from account as operation op with the store's own
// statement, and returns the debit's ledger position.
func (h *heldTx) spend(account, op string, cost int64) int64 {
	h.t.Helper()
	ok, err := spendIn(context.Background(), h.tx, h.s, account, op, cost)
	if err != nil || !ok {
		h.t.Fatalf("spend %s in the held transaction: ok %v, %v", op, ok, err)
	}
	return h.seq(op, "debit")
}

// spendIn debits cost from account as operation op in tx with the store's
// own statement, and reports whether the debit was made.
func spendIn(ctx context.Context, tx pgx.Tx, s *Store, account, op string, cost int64) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, s.sql.spend, account, cost, op, "", "").Scan(&ok, nil, nil, nil)
	return ok, err
}

// refund gives back amount of operation op's debit with the store's own
// statement, and returns the refund's ledger position.
func (h *heldTx) refund(account, op string, amount int64) int64 {
	h.t.Helper()
	var balance int64
	err := h.tx.QueryRow(context.Background(), h.s.sql.credit, account, amount, "refund", op, true, "", "").
		Scan(&balance)
	if err != nil {
		h.t.Fatalf("refund %s in the held transaction: %v", op, err)
	}
	return h.seq(op, "refund")
}

// seq returns the ledger position of op's row of kind, as the held
// transaction sees it.
func (h *heldTx) seq(op, kind string) int64 {
	h.t.Helper()
	var seq int64
	q := `SELECT seq FROM ` + pgx.Identifier{h.s.schema}.Sanitize() + `.ledger WHERE operation_id = $1 AND kind = $2`
	if err := h.tx.QueryRow(context.Background(), q, op, kind).Scan(&seq); err != nil {
		h.t.Fatal(err)
	}
	return seq
}

// takeXID makes the held transaction take its transaction ID now.
func (h *heldTx) takeXID() {
	h.t.Helper()
	if _, err := h.tx.Exec(context.Background(), `SELECT pg_current_xact_id()`); err != nil {
		h.t.Fatal(err)
	}
}

// takeSeq takes the next ledger position before the transaction has an
// ID of its own.
func (h *heldTx) takeSeq() int64 {
	h.t.Helper()
	var seq int64
	var noXID bool
	q := `SELECT nextval(pg_get_serial_sequence($1, 'seq')), pg_current_xact_id_if_assigned() IS NULL`
	err := h.tx.QueryRow(context.Background(), q, pgx.Identifier{h.s.schema, "ledger"}.Sanitize()).Scan(&seq, &noXID)
	if err != nil || !noXID {
		h.t.Fatalf("taking a seq: %v; the transaction has an ID already: %v", err, !noXID)
	}
	return seq
}

// debitAt appends a debit of cost as op at ledger position seq, as the
// spend function would.
func (h *heldTx) debitAt(seq int64, account, op string, cost int64) {
	h.t.Helper()
	sc := pgx.Identifier{h.s.schema}.Sanitize()
	q := `INSERT INTO ` + sc + `.ledger (seq, at, account_id, kind, amount, balance, operation_id)
		OVERRIDING SYSTEM VALUE VALUES ($1, ` + sc + `.clock(), $2, 'debit', -$3::bigint, 0, $4)`
	if _, err := h.tx.Exec(context.Background(), q, seq, account, cost, op); err != nil {
		h.t.Fatal(err)
	}
}

// commit commits the held transaction.
func (h *heldTx) commit() {
	h.t.Helper()
	if err := h.tx.Commit(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

// floors returns the debit and refund floors of consumer "stripe".
func floors(t *testing.T, pool *pgxpool.Pool, schema string) (seq, refundSeq int64) {
	t.Helper()
	q := `SELECT seq, refund_seq FROM ` + pgx.Identifier{schema}.Sanitize() + `.usage_floor WHERE consumer = 'stripe'`
	if err := pool.QueryRow(context.Background(), q).Scan(&seq, &refundSeq); err != nil {
		t.Fatal(err)
	}
	return seq, refundSeq
}

// newLateFixture returns a usage fixture with the accounts "acct" and
// "held" (the one a held transaction locks).
func newLateFixture(t *testing.T) *usageFixture {
	t.Helper()
	return newUsageFixture(t, UsageOptions{Settle: time.Minute, Lease: time.Hour, Keep: 24 * time.Hour}, "acct", "held")
}

// reportAll reads what is pending once the settle delay passed, checks it
// is want, and acknowledges it.
func (f *usageFixture) reportAll(t *testing.T, want string) []store.Usage {
	t.Helper()
	f.advance(2 * time.Minute)
	ids, us := pendingIDs(t, f.o, 100)
	if fmt.Sprint(ids) != want {
		t.Fatalf("pending %v, want %s", ids, want)
	}
	if err := f.o.Ack(context.Background(), us); err != nil {
		t.Fatal(err)
	}
	return us
}

func TestUsageOutboxReportsDebitsThatCommitLate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		early func(*heldTx) int64        // before the other debits commit
		late  func(*heldTx, int64) int64 // after they commit, given what early returned
	}{
		{
			name:  "low seq, low xid",
			early: func(h *heldTx) int64 { return h.spend("held", "late", 7) },
			late:  func(_ *heldTx, seq int64) int64 { return seq },
		},
		{
			name:  "high seq, low xid",
			early: func(h *heldTx) int64 { h.takeXID(); return 0 },
			late:  func(h *heldTx, _ int64) int64 { return h.spend("held", "late", 7) },
		},
		{
			name:  "low seq, high xid",
			early: func(h *heldTx) int64 { return h.takeSeq() },
			late:  func(h *heldTx, seq int64) int64 { h.debitAt(seq, "held", "late", 7); return seq },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newLateFixture(t)
			h := hold(t, f.pool, f.s)
			seq := tc.early(h)
			spendOp(t, f.s, "acct", "op1", 3, 0)
			f.reportAll(t, "[op1:3]")
			seq = tc.late(h, seq)
			spendOp(t, f.s, "acct", "op2", 4, 0)
			f.reportAll(t, "[op2:4]")
			f.reportAll(t, "[]")
			if floor, _ := floors(t, f.pool, f.schema); floor < seq {
				t.Fatalf("debit floor %d, want it past the open transaction's debit %d", floor, seq)
			}
			h.commit()
			us := f.reportAll(t, "[late:7]")
			if us[0].Seq != seq || us[0].AccountID != "held" || us[0].Revision != 0 {
				t.Fatalf("late usage %+v, want seq %d of account held, revision 0", us[0], seq)
			}
			f.reportAll(t, "[]")
			f.advance(25 * time.Hour) // past Keep: the acknowledgements go, nothing comes back
			f.reportAll(t, "[]")
		})
	}
}

func TestUsageOutboxCorrectsRefundsThatCommitLate(t *testing.T) {
	f := newLateFixture(t)
	spendOp(t, f.s, "held", "op1", 10, 0)
	spendOp(t, f.s, "acct", "op2", 8, 0)
	f.reportAll(t, "[op1:10 op2:8]")
	h := hold(t, f.pool, f.s)
	seq := h.refund("held", "op1", 4)
	refundOp(t, f.s, "acct", "op2", 3)
	f.reportAll(t, "[op2:5]")
	spendOp(t, f.s, "acct", "op3", 2, 1)
	f.reportAll(t, "[op3:1]")
	f.reportAll(t, "[]")
	if _, floor := floors(t, f.pool, f.schema); floor < seq {
		t.Fatalf("refund floor %d, want it past the open transaction's refund %d", floor, seq)
	}
	h.commit()
	us := f.reportAll(t, "[op1:6]")
	if us[0].Revision != 1 || us[0].ReportedAt.IsZero() {
		t.Fatalf("late refund read as %+v, want the correction of revision 1", us[0])
	}
	f.reportAll(t, "[]")
}

// TestUsageOutboxReportsEveryCommittedDebitOnce spends in transactions
// that commit a few round trips after their debit, while a reporter with no
// settle delay reads and acknowledges: every debit that committed is
// reported once, none that rolled back.
func TestUsageOutboxReportsEveryCommittedDebitOnce(t *testing.T) {
	pool := newPool(t, nil)
	schema := newSchema(t, pool)
	s := newStore(t, pool, Options{Schema: schema})
	const writers, each = 8, 40
	for w := range writers {
		putAccount(t, s, fmt.Sprintf("acct%d", w), 1000)
	}
	committed := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				op := fmt.Sprintf("w%d-%d", w, i)
				if spendInTx(t, pool, s, fmt.Sprintf("acct%d", w), op, i%5 != 4) {
					mu.Lock()
					committed[op] = true
					mu.Unlock()
				}
			}
		}()
	}
	o := newOutbox(t, s, &UsageOptions{Settle: time.Nanosecond, Lease: time.Hour})
	seen := map[string]int{}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		for _, u := range drain(t, o) {
			seen[u.ID]++
		}
	}
	if len(seen) != len(committed) {
		t.Errorf("%d usages reported, want the %d committed", len(seen), len(committed))
	}
	for op := range committed {
		if seen[op] != 1 {
			t.Errorf("usage %s reported %d times, want once", op, seen[op])
		}
	}
}

// spendInTx debits 1 as op in a transaction that makes ten more round
// trips before it commits, or rolls back; it reports whether it committed.
func spendInTx(t *testing.T, pool *pgxpool.Pool, s *Store, account, op string, commit bool) bool {
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Error(err)
		return false
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit, a no-op
	if ok, err := spendIn(ctx, tx, s, account, op, 1); err != nil || !ok {
		t.Errorf("spend %s: ok %v, %v", op, ok, err)
		return false
	}
	for range 10 {
		if _, err := tx.Exec(ctx, `SELECT 1`); err != nil {
			t.Error(err)
			return false
		}
	}
	if !commit {
		return false
	}
	if err := tx.Commit(ctx); err != nil {
		t.Error(err)
		return false
	}
	return true
}

// drain reads and acknowledges until nothing is pending, and returns what
// it read.
func drain(t *testing.T, o *UsageOutbox) []store.Usage {
	t.Helper()
	var all []store.Usage
	for {
		us, err := o.Pending(context.Background(), 50)
		if err != nil {
			t.Fatal(err)
		}
		if len(us) == 0 {
			return all
		}
		if err := o.Ack(context.Background(), us); err != nil {
			t.Fatal(err)
		}
		all = append(all, us...)
	}
}

// TestUsageOutboxAcrossTheXIDMigration reads usage on a schema of
// migration 0003, then upgrades it: what was reported is not read again,
// what was not is, with the rows written since.
func TestUsageOutboxAcrossTheXIDMigration(t *testing.T) {
	pool := newPool(t, nil)
	all, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	var upTo3 []migration
	for _, m := range all {
		if m.version <= 3 {
			upTo3 = append(upTo3, m)
		}
	}
	schema := "go402test_" + randomID()[:12]
	migrate := func(ms []migration) {
		t.Helper()
		tx, err := pool.Begin(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(context.Background()) //nolint:errcheck // after Commit, a no-op
		if err := applyMigrations(context.Background(), tx, schema, ms); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	migrate(upTo3)
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	advance := setClock(t, pool, schema, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := newStore(t, pool, Options{Schema: schema})
	f := &usageFixture{pool: pool, schema: schema, s: s, advance: advance}
	f.o = newOutbox(t, s, &UsageOptions{Settle: time.Minute, Lease: time.Hour, Keep: time.Hour})
	putAccount(t, s, "acct", 1000)
	spendOp(t, s, "acct", "op1", 3, 0)
	f.reportAll(t, "[op1:3]")
	spendOp(t, s, "acct", "op2", 4, 0)
	advance(2 * time.Hour) // op1's acknowledgement is dropped
	_, us := pendingIDs(t, f.o, 1)
	if len(us) != 1 || us[0].ID != "op2" {
		t.Fatalf("before the upgrade: %+v, want op2", us)
	}
	var acks int
	q := `SELECT count(*) FROM ` + pgx.Identifier{schema}.Sanitize() + `.usage_acks`
	if err := pool.QueryRow(context.Background(), q).Scan(&acks); err != nil || acks != 0 {
		t.Fatalf("%d acknowledgements before the upgrade (%v), want none", acks, err)
	}
	migrate(all)
	spendOp(t, s, "acct", "op3", 5, 0)
	advance(2 * time.Hour) // op2's lease lapses, unacknowledged
	f.reportAll(t, "[op2:4 op3:5]")
	f.reportAll(t, "[]")
}
