package stripebilling_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/go402/go402/billing/stripebilling"
	"github.com/go402/go402/billing/stripebilling/internal/stripemock"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// usageServer is a paywall on a Journal at path: GET /work costs 3, and
// answers 500 (refunded) when asked to fail.
func usageServer(t *testing.T, path string, now func() time.Time) (*stripebilling.Journal, http.Handler) {
	t.Helper()
	mem := store.NewMemory(&store.MemoryOptions{Clock: now})
	ctx := context.Background()
	if err := mem.PutAccount(ctx, store.Account{ID: "acct", Balance: 10_000, Metadata: map[string]string{"stripe_customer": "cus_1"}}); err != nil {
		t.Fatal(err)
	}
	if err := mem.PutKey(ctx, store.NewKey("sk_test_usage_0123456789abcdef", "acct")); err != nil {
		t.Fatal(err)
	}
	j, err := stripebilling.OpenJournal(path, mem, &stripebilling.JournalOptions{Clock: now})
	if err != nil {
		t.Fatal(err)
	}
	p, err := paywall.New(j, &paywall.Options{Clock: now})
	if err != nil {
		t.Fatal(err)
	}
	work := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("fail") {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	return j, p.Authenticate(p.ChargeWith(paywall.ChargeOptions{Cost: 3, Refund: true})(work))
}

// journalWithAccount opens a Journal at path, with opts, on a memory store
// on opts.Clock, and gives it account acct with a balance of 100.
func journalWithAccount(t *testing.T, path string, opts *stripebilling.JournalOptions) *stripebilling.Journal {
	t.Helper()
	j, err := stripebilling.OpenJournal(path, store.NewMemory(&store.MemoryOptions{Clock: opts.Clock}), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.PutAccount(context.Background(), store.Account{ID: "acct", Balance: 100}); err != nil {
		t.Fatal(err)
	}
	return j
}

// opCtx returns a context of operation op.
func opCtx(op string) context.Context {
	return store.WithOperation(context.Background(), store.Operation{ID: op})
}

// serveWork sends h 40 requests with acct's key, every tenth of them
// failing (and so refunded).
func serveWork(t *testing.T, h http.Handler) {
	t.Helper()
	for i := range 40 {
		target := "/work"
		if i%10 == 9 {
			target += "?fail"
		}
		r := httptest.NewRequest(http.MethodGet, target, nil)
		r.Header.Set("X-API-Key", "sk_test_usage_0123456789abcdef")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK && w.Code != http.StatusInternalServerError {
			t.Fatalf("request %d: status %d", i, w.Code)
		}
	}
}

// debitOps returns the operations of acct's debits in j, which must hold
// the 40 debits and 4 refunds of [serveWork].
func debitOps(t *testing.T, j *stripebilling.Journal) []string {
	t.Helper()
	entries, err := j.Entries(context.Background(), "acct", store.LedgerQuery{})
	if err != nil || len(entries) != 44 {
		t.Fatalf("Entries: %d, %v; want 40 debits and 4 refunds", len(entries), err)
	}
	var ops []string
	for _, e := range entries {
		if e.Kind == "debit" && !slices.Contains(ops, e.OperationID) {
			ops = append(ops, e.OperationID)
		}
	}
	return ops
}

// acceptedOncePerOp checks that mock accepted 36 identifiers, each once,
// each one of ops, with value 3.
func acceptedOncePerOp(t *testing.T, mock *stripemock.Mock, ops []string) {
	t.Helper()
	accepted := mock.Events()
	if len(accepted) != 36 {
		t.Errorf("%d identifiers accepted, want 36 (40 debits less 4 refunded)", len(accepted))
	}
	for id, n := range accepted {
		if n != 1 || !slices.Contains(ops, id) || mock.Value(id) != "3" {
			t.Errorf("identifier %s accepted %d times with value %s", id, n, mock.Value(id))
		}
	}
}

// Usage is reported once per debit across an outage and a crash and
// restart of the reporter: no identifier reaches stripe-mock twice, none is
// missing, refunded requests are not billed.
func TestReporterAcrossCrashAndRestart(t *testing.T) {
	mock := stripemock.Start(t)
	now := t0
	clock := func() time.Time { return now }
	path := filepath.Join(t.TempDir(), "usage.journal")
	j, h := usageServer(t, path, clock)
	serveWork(t, h)
	if n, _ := j.Pending(context.Background(), 100); len(n) != 0 {
		t.Fatalf("%d usages pending before they settled", len(n))
	}
	now = now.Add(2 * time.Minute)
	ops := debitOps(t, j)

	var waits []time.Duration
	opts := stripebilling.ReporterOptions{EventName: "api_requests", Admin: j, BatchSize: 7, Backoff: time.Second, MaxBackoff: 4 * time.Second,
		Sleep: func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return ctx.Err() }}
	ctx, cancel := context.WithCancel(context.Background())
	// An outage of three 503s, then the reporter crashes at its 20th request.
	mock.Outage = func(n int) bool { return n <= 3 }
	mock.Before = func(n int) bool {
		if n == 20 {
			cancel()
			return false
		}
		return true
	}
	rep, err := stripebilling.NewReporter(stripemock.Client(mock.URL), j, opts)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := rep.Flush(ctx)
	if !errors.Is(err, context.Canceled) || sent != 20-1-3 {
		t.Fatalf("before the crash: sent %d, %v; want 16 and context.Canceled", sent, err)
	}
	if !slices.Equal(waits[:3], []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}) {
		t.Errorf("back-off waits %v, want 1s 2s 4s", waits)
	}
	j.Close() // the process dies: only the file is left

	j2, err := stripebilling.OpenJournal(path, store.NewMemory(nil), &stripebilling.JournalOptions{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	opts.Admin = nil
	opts.Customer = func(context.Context, string) (string, error) { return "cus_1", nil }
	rep2, err := stripebilling.NewReporter(stripemock.Client(mock.URL), j2, opts)
	if err != nil {
		t.Fatal(err)
	}
	if sent, err := rep2.Flush(context.Background()); err != nil || sent != 36-16 {
		t.Fatalf("after the restart: sent %d, %v; want 20", sent, err)
	}
	if sent, err := rep2.Flush(context.Background()); err != nil || sent != 0 {
		t.Errorf("second flush: sent %d, %v; want nothing", sent, err)
	}
	acceptedOncePerOp(t, mock, ops)
}

// A refund after its usage was reported cancels the meter event and
// reports the net as "<op>~1"; one in full only cancels; one after the
// cancel window is logged and acknowledged. A reopened journal has nothing
// left to send.
func TestReporterCorrectsRefundsAfterTheReport(t *testing.T) {
	mock := stripemock.Start(t)
	now := t0
	clock := func() time.Time { return now }
	path := filepath.Join(t.TempDir(), "usage.journal")
	j := journalWithAccount(t, path, &stripebilling.JournalOptions{Clock: clock})
	ctx := context.Background()
	for op, cost := range map[string]int64{"op1": 10, "op2": 5, "op3": 4} {
		if r, err := j.Spend(opCtx(op), "acct", cost); err != nil || !r.OK {
			t.Fatalf("spend %s: %+v %v", op, r, err)
		}
	}
	now = now.Add(2 * time.Minute)
	rep, err := stripebilling.NewReporter(stripemock.Client(mock.URL), j, stripebilling.ReporterOptions{EventName: "api_requests",
		Customer: func(context.Context, string) (string, error) { return "cus_1", nil }, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	flush := func(want int) {
		t.Helper()
		if sent, err := rep.Flush(ctx); err != nil || sent != want {
			t.Fatalf("Flush: %d, %v; want %d", sent, err, want)
		}
	}
	refund := func(op string, amount int64) {
		t.Helper()
		if _, err := j.Refund(opCtx(op), "acct", amount); err != nil {
			t.Fatal(err)
		}
	}
	flush(3)
	refund("op1", 4)
	refund("op2", 5)
	flush(2)
	now = now.Add(24 * time.Hour)
	refund("op3", 1) // past the cancel window
	flush(1)
	flush(0)
	j.Close()
	j2, err := stripebilling.OpenJournal(path, store.NewMemory(nil), &stripebilling.JournalOptions{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if p, err := j2.Pending(ctx, 10); err != nil || len(p) != 0 {
		t.Fatalf("reopened journal: pending %+v, %v; want none", p, err)
	}
	events, values := mock.Events(), map[string]string{}
	for id := range events {
		values[id] = mock.Value(id)
	}
	if got := fmt.Sprint(events, values, mock.Cancellations()); got !=
		"map[op1:1 op1~1:1 op2:1 op3:1] map[op1:10 op1~1:6 op2:5 op3:4] map[op1:1 op2:1]" {
		t.Errorf("stripe-mock accepted %s", got)
	}
}

func TestNewReporterRefusesMistakes(t *testing.T) {
	client := stripemock.Client("http://127.0.0.1:1")
	j, err := stripebilling.OpenJournal(filepath.Join(t.TempDir(), "j"), store.NewMemory(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	good := stripebilling.ReporterOptions{EventName: "api_requests", Admin: j}
	for name, mutate := range map[string]func(*stripebilling.ReporterOptions){
		"no event name":          func(o *stripebilling.ReporterOptions) { o.EventName = "" },
		"no customer":            func(o *stripebilling.ReporterOptions) { o.Admin = nil },
		"negative batch":         func(o *stripebilling.ReporterOptions) { o.BatchSize = -1 },
		"negative window":        func(o *stripebilling.ReporterOptions) { o.CancelWindow = -time.Hour },
		"window beyond Stripe's": func(o *stripebilling.ReporterOptions) { o.CancelWindow = 25 * time.Hour },
	} {
		o := good
		mutate(&o)
		if _, err := stripebilling.NewReporter(client, j, o); err == nil {
			t.Errorf("%s: nil error", name)
		}
	}
	if _, err := stripebilling.NewReporter(client, j, good); err != nil {
		t.Errorf("good options: %v", err)
	}
}

// A refund between Pending and Ack makes a correction at once, kept
// across a reopening; a refund after Keep makes none.
func TestJournalCorrections(t *testing.T) {
	now := t0
	clock := func() time.Time { return now }
	path := filepath.Join(t.TempDir(), "usage.journal")
	opts := &stripebilling.JournalOptions{Clock: clock, Keep: time.Hour}
	j := journalWithAccount(t, path, opts)
	ctx := context.Background()
	for _, op := range []string{"op1", "op2"} {
		if _, err := j.Spend(opCtx(op), "acct", 10); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(2 * time.Minute)
	us, err := j.Pending(ctx, 10)
	if err != nil || len(us) != 2 {
		t.Fatalf("Pending: %+v, %v", us, err)
	}
	if _, err := j.Refund(opCtx("op1"), "acct", 4); err != nil {
		t.Fatal(err)
	}
	if err := j.Ack(ctx, us); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j2, err := stripebilling.OpenJournal(path, store.NewMemory(&store.MemoryOptions{Clock: clock}), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if err := j2.PutAccount(ctx, store.Account{ID: "acct", Balance: 100}); err != nil {
		t.Fatal(err)
	}
	us, err = j2.Pending(ctx, 10)
	if err != nil || len(us) != 1 || us[0].ID != "op1" || us[0].Value != 6 || us[0].Revision != 1 || !us[0].ReportedAt.Equal(now) {
		t.Fatalf("after reopening: %+v, %v; want op1's correction to 6, revision 1", us, err)
	}
	if err := j2.Ack(ctx, us); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour)
	if _, err := j2.Pending(ctx, 10); err != nil { // forgets what is older than Keep
		t.Fatal(err)
	}
	if _, err := j2.Refund(opCtx("op2"), "acct", 5); err != nil {
		t.Fatal(err)
	}
	if us, err := j2.Pending(ctx, 10); err != nil || len(us) != 0 {
		t.Fatalf("refund after Keep: %+v, %v; want nothing", us, err)
	}
}
