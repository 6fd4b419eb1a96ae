package paywall_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// window is the IdempotencyWindow of the tests.
const window = 10 * time.Minute

// idemStep is one request of an idempotency scenario, or a pause.
type idemStep struct {
	method, target string
	key            string   // API key; keyPro if empty
	idem           []string // Idempotency-Key field lines
	advance        time.Duration
	spendErr       error // the store's Spend fails with it

	wantStatus  int
	wantCode    string
	wantCharged int64 // Caller.Charged, when the handler ran
	wantReplay  bool  // Caller.Replay and the last charge decision's Replay
	wantBalance int64 // of the key's account afterwards
}

// do is a request step.
func do(method, target string, idem ...string) idemStep {
	return idemStep{method: method, target: target, idem: idem}
}

func (s idemStep) as(key string) idemStep { s.key = key; return s }

func (s idemStep) failing(err error) idemStep { s.spendErr = err; return s }

// answering expects the handler's status instead of 200.
func (s idemStep) answering(status int) idemStep { s.wantStatus = status; return s }

// charged expects a 200 that debited n, leaving balance.
func (s idemStep) charged(n, balance int64) idemStep {
	s.wantStatus, s.wantCharged, s.wantBalance = 200, n, balance
	return s
}

// replayed expects a 200 let through uncharged as a retry.
func (s idemStep) replayed(balance int64) idemStep {
	s.wantStatus, s.wantReplay, s.wantBalance = 200, true, balance
	return s
}

// refused expects a denial with status and code.
func (s idemStep) refused(status int, code paywall.Code, balance int64) idemStep {
	s.wantStatus, s.wantCode, s.wantBalance = status, string(code), balance
	return s
}

// wait advances the clock.
func wait(d time.Duration) idemStep { return idemStep{advance: d} }

// idemServer is the mux of the idempotency tests. Every route answers 200
// unless told otherwise:
//
//	POST /generate   costs 10
//	POST /other      costs 10
//	/any             costs 10, any method
//	POST /sized      costs ?n
//	POST /flaky      costs 10, refunded on 5xx; answers 500 with ?fail=1
//	POST /stacked    costs 10, then ?n (default 5)
//	POST /free       costs nothing
func idemServer(p *paywall.Paywall, seen func(*paywall.Caller)) *http.ServeMux {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := paywall.CallerFromContext(r.Context())
		seen(c)
		if r.URL.Query().Get("fail") == "1" {
			http.Error(w, "failed", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	n := func(r *http.Request) (int64, error) {
		if q := r.URL.Query().Get("n"); q != "" {
			return strconv.ParseInt(q, 10, 64)
		}
		return 5, nil
	}
	mux := http.NewServeMux()
	mux.Handle("POST /generate", p.Authenticate(p.Charge(10)(h)))
	mux.Handle("POST /other", p.Authenticate(p.Charge(10)(h)))
	mux.Handle("/any", p.Authenticate(p.Charge(10)(h)))
	mux.Handle("POST /sized", p.Authenticate(p.ChargeWith(paywall.ChargeOptions{CostFunc: n})(h)))
	mux.Handle("POST /flaky", p.Authenticate(p.ChargeWith(paywall.ChargeOptions{Cost: 10, Refund: true})(h)))
	mux.Handle("POST /stacked", p.Authenticate(p.Charge(10)(p.ChargeWith(paywall.ChargeOptions{CostFunc: n})(h))))
	mux.Handle("POST /free", p.Authenticate(p.Charge(0)(p.Charge(10)(h))))
	return mux
}

func TestIdempotency(t *testing.T) {
	long := strings.Repeat("k", 255)
	tests := []struct {
		name   string
		window time.Duration // IdempotencyWindow; window if zero, off if negative
		steps  []idemStep
	}{
		{"retry not charged", 0, []idemStep{
			do("POST", "/generate", `"k1"`).charged(10, 990),
			do("POST", "/generate", `"k1"`).replayed(990),
			do("POST", "/generate", `"k1"`).replayed(990),
		}},
		{"quoted and bare are one key", 0, []idemStep{
			do("POST", "/generate", `"8e03978e-40d5-43e8-bc93-6894a57f9324"`).charged(10, 990),
			do("POST", "/generate", `8e03978e-40d5-43e8-bc93-6894a57f9324`).replayed(990),
		}},
		{"escapes", 0, []idemStep{
			do("POST", "/generate", `"a\"b\\c"`).charged(10, 990),
			do("POST", "/generate", ` "a\"b\\c"	`).replayed(990),
			do("POST", "/generate", `"a\"b\\c"`, `"a\"b\\c"`).replayed(990),
			do("POST", "/generate", `"a"b\c"`).refused(400, paywall.CodeInvalidRequest, 990),
		}},
		{"keys differ", 0, []idemStep{
			do("POST", "/generate", `"k1"`).charged(10, 990),
			do("POST", "/generate", `"k2"`).charged(10, 980),
			do("POST", "/generate", `"K1"`).charged(10, 970),
			do("POST", "/generate").charged(10, 960),
			do("POST", "/generate", `"k1"`).replayed(960),
		}},
		{"no key, no memory", 0, []idemStep{
			do("POST", "/generate").charged(10, 990),
			do("POST", "/generate").charged(10, 980),
		}},
		{"window", 0, []idemStep{
			do("POST", "/generate", `"k1"`).charged(10, 990),
			wait(window - time.Nanosecond),
			do("POST", "/generate", `"k1"`).replayed(990),
			wait(time.Nanosecond),
			do("POST", "/generate", `"k1"`).charged(10, 980),
			do("POST", "/generate", `"k1"`).replayed(980),
		}},
		{"accounts independent", 0, []idemStep{
			do("POST", "/generate", `"k1"`).charged(10, 990),
			do("POST", "/generate", `"k1"`).as(keyFree).charged(10, 90),
			do("POST", "/generate", `"k1"`).as(keyFree).replayed(90),
			do("POST", "/generate", `"k1"`).replayed(990),
		}},
		{"reused on another route", 0, []idemStep{
			do("POST", "/generate", `"k1"`).charged(10, 990),
			do("POST", "/other", `"k1"`).refused(422, paywall.CodeIdempotencyKeyReused, 990),
			do("POST", "/generate", `"k1"`).replayed(990),
		}},
		{"reused with another method", 0, []idemStep{
			do("POST", "/any", `"k1"`).charged(10, 990),
			do("PUT", "/any", `"k1"`).refused(422, paywall.CodeIdempotencyKeyReused, 990),
		}},
		{"reuse after the window is a new key", 0, []idemStep{
			do("POST", "/generate", `"k1"`).charged(10, 990),
			wait(window),
			do("POST", "/other", `"k1"`).charged(10, 980),
			do("POST", "/generate", `"k1"`).refused(422, paywall.CodeIdempotencyKeyReused, 980),
		}},
		{"refused first attempt", 0, []idemStep{
			do("POST", "/sized?n=5000", `"k1"`).refused(402, paywall.CodeInsufficientCredits, 1000),
			do("POST", "/sized?n=10", `"k1"`).charged(10, 990),
			do("POST", "/sized?n=10", `"k1"`).replayed(990),
		}},
		{"store down on first attempt", 0, []idemStep{
			do("POST", "/generate", `"k1"`).failing(errBackend).refused(503, paywall.CodeStoreUnavailable, 1000),
			do("POST", "/generate", `"k1"`).charged(10, 990),
			do("POST", "/generate", `"k1"`).replayed(990),
		}},
		{"refunded first attempt", 0, []idemStep{
			do("POST", "/flaky?fail=1", `"k1"`).charged(10, 1000).answering(500), // debited, then refunded
			do("POST", "/flaky", `"k1"`).charged(10, 990),
			do("POST", "/flaky?fail=1", `"k1"`).replayed(990).answering(500), // nothing debited, nothing refunded
			do("POST", "/flaky", `"k1"`).replayed(990),
		}},
		{"stacked charges", 0, []idemStep{
			do("POST", "/stacked", `"k1"`).charged(15, 985),
			do("POST", "/stacked", `"k1"`).replayed(985),
		}},
		{"stacked, inner refused", 0, []idemStep{
			do("POST", "/stacked?n=5000", `"k1"`).refused(402, paywall.CodeInsufficientCredits, 990), // the outer 10 stands
			do("POST", "/stacked", `"k1"`).charged(15, 975),
			do("POST", "/stacked", `"k1"`).replayed(975),
		}},
		{"free outer charge", 0, []idemStep{
			do("POST", "/free", `"k1"`).charged(10, 990),
			do("POST", "/free", `"k1"`).replayed(990),
		}},
		{"longest key", 0, []idemStep{
			do("POST", "/generate", `"`+long+`"`).charged(10, 990),
			do("POST", "/generate", long).replayed(990),
		}},
		{"malformed", 0, []idemStep{
			do("POST", "/generate", `"`+long+`k"`).refused(400, paywall.CodeInvalidRequest, 1000),
			do("POST", "/generate", long+"k").refused(400, paywall.CodeInvalidRequest, 1000),
			do("POST", "/generate", `"`+strings.Repeat(`\\`, 300)+`"`).refused(400, paywall.CodeInvalidRequest, 1000),
			do("POST", "/generate", `""`).refused(400, paywall.CodeInvalidRequest, 1000),
			do("POST", "/generate", ``).refused(400, paywall.CodeInvalidRequest, 1000),
			do("POST", "/generate", `"k1`).refused(400, paywall.CodeInvalidRequest, 1000),
			do("POST", "/generate", `"k1";a=1`).refused(400, paywall.CodeInvalidRequest, 1000),
			do("POST", "/generate", `"k1", "k1"`).refused(400, paywall.CodeInvalidRequest, 1000),
			do("POST", "/generate", `"k\1"`).refused(400, paywall.CodeInvalidRequest, 1000),
			do("POST", "/generate", "\"k\x01\"").refused(400, paywall.CodeInvalidRequest, 1000),
			do("POST", "/generate", `"ké"`).refused(400, paywall.CodeInvalidRequest, 1000),
			do("POST", "/generate", `k 1`).refused(400, paywall.CodeInvalidRequest, 1000),
			do("POST", "/generate", `"k1"`, `"k2"`).refused(400, paywall.CodeInvalidRequest, 1000),
			do("POST", "/free", `"k1`).refused(400, paywall.CodeInvalidRequest, 1000),
		}},
		{"off", -1, []idemStep{
			do("POST", "/generate", `"k1"`).charged(10, 990),
			do("POST", "/generate", `"k1"`).charged(10, 980),
			do("POST", "/other", `"k1"`).charged(10, 970),
			do("POST", "/generate", `"k1`).charged(10, 960),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if _, err := f.mem.TopUp(context.Background(), "acct_free", 100); err != nil {
				t.Fatal(err)
			}
			fs := &failingStore{Store: f.mem}
			var got decisions
			w := window
			if tt.window < 0 {
				w = 0
			}
			p := newPaywall(t, fs, f.clock, &paywall.Options{IdempotencyWindow: w, OnDecision: got.record})
			var caller *paywall.Caller
			mux := idemServer(p, func(c *paywall.Caller) { caller = c })

			for i, st := range tt.steps {
				if st.advance != 0 {
					f.clock.Advance(st.advance)
					continue
				}
				caller = nil
				fs.mu.Lock()
				fs.spendErr = st.spendErr
				fs.mu.Unlock()
				key, acct := keyPro, "acct_pro"
				if st.key == keyFree {
					key, acct = keyFree, "acct_free"
				}
				r := request(st.method, st.target, key, "")
				r.Header["Idempotency-Key"] = st.idem
				n := len(got.all())
				resp := serve(mux, r)
				where := fmt.Sprintf("step %d (%s %s %q)", i, st.method, st.target, st.idem)

				if resp.Code != st.wantStatus {
					t.Fatalf("%s: status %d, want %d; body %s", where, resp.Code, st.wantStatus, resp.Body)
				}
				if b := f.balance(t, acct); b != st.wantBalance {
					t.Errorf("%s: balance %d, want %d", where, b, st.wantBalance)
				}
				var charges []paywall.Decision
				for _, d := range got.all()[n:] {
					if d.Step == "charge" {
						charges = append(charges, d)
					}
				}
				if len(charges) == 0 {
					t.Fatalf("%s: no charge decision", where)
				}
				last := charges[len(charges)-1]
				if st.wantCode != "" {
					if pr := decodeProblem(t, resp); pr.Code != st.wantCode {
						t.Errorf("%s: code %q, want %q", where, pr.Code, st.wantCode)
					}
					if last.Allowed || string(last.Code) != st.wantCode || last.Replay {
						t.Errorf("%s: decision %+v", where, last)
					}
					continue
				}
				if caller == nil {
					t.Fatalf("%s: handler did not run", where)
				}
				if caller.Charged != st.wantCharged || caller.Replay != st.wantReplay {
					t.Errorf("%s: Caller charged %d replay %v, want %d, %v", where, caller.Charged, caller.Replay, st.wantCharged, st.wantReplay)
				}
				if st.wantReplay && caller.Balance != st.wantBalance {
					t.Errorf("%s: Caller balance %d, want %d", where, caller.Balance, st.wantBalance)
				}
				// A Charge that costs nothing reports no replay; the others,
				// inside it, do.
				for _, d := range charges {
					if !d.Allowed || d.Code != "" || d.Replay && (d.Cost != 0 || d.Balance != st.wantBalance) {
						t.Errorf("%s: decision %+v", where, d)
					}
				}
				if last.Replay != st.wantReplay {
					t.Errorf("%s: last charge decision %+v, want Replay %v", where, last, st.wantReplay)
				}
			}
		})
	}
}

// TestIdempotencyInProgress holds a first request in its handler while
// duplicates arrive: each gets 409 with Retry-After: 1, the same key on
// another route 422; once the first has finished, a retry is let through
// uncharged. One debit in all.
func TestIdempotencyInProgress(t *testing.T) {
	f := newFixture(t)
	cs := &countingStore{Store: f.mem}
	p := newPaywall(t, cs, f.clock, &paywall.Options{IdempotencyWindow: window})
	entered, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if first.CompareAndSwap(false, true) {
			close(entered)
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	})
	mux := http.NewServeMux()
	mux.Handle("POST /generate", p.Authenticate(p.Charge(10)(h)))
	mux.Handle("POST /other", p.Authenticate(p.Charge(10)(h)))
	req := func(target string) *http.Request {
		r := request("POST", target, keyPro, "")
		r.Header.Set("Idempotency-Key", `"k1"`)
		return r
	}

	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- serve(mux, req("/generate")) }()
	<-entered
	for i := 0; i < 3; i++ {
		w := serve(mux, req("/generate"))
		if w.Code != http.StatusConflict || w.Header().Get("Retry-After") != "1" || decodeProblem(t, w).Code != "idempotency_in_progress" {
			t.Errorf("duplicate in flight: %d %v %s", w.Code, w.Header(), w.Body)
		}
	}
	if w := serve(mux, req("/other")); w.Code != http.StatusUnprocessableEntity || decodeProblem(t, w).Code != "idempotency_key_reused" {
		t.Errorf("reuse in flight: %d %s", w.Code, w.Body)
	}
	close(release)
	if w := <-done; w.Code != 200 {
		t.Errorf("first: %d %s", w.Code, w.Body)
	}
	if w := serve(mux, req("/generate")); w.Code != 200 {
		t.Errorf("retry: %d %s", w.Code, w.Body)
	}
	if n := cs.spends.Load(); n != 1 {
		t.Errorf("%d debits, want 1", n)
	}
	if b := f.balance(t, "acct_pro"); b != 990 {
		t.Errorf("balance %d, want 990", b)
	}
}

// TestIdempotencyConcurrent sends many copies of one request with one key
// at once, on a key that is new, and on one that was refunded before:
// exactly one is debited, and every other one is either refused with 409
// or let through uncharged after it. Retries of a request are also sent
// under other keys, which are all charged.
func TestIdempotencyConcurrent(t *testing.T) {
	const (
		copies = 100
		others = 20
	)
	f := newFixture(t)
	cs := &countingStore{Store: f.mem}
	p := newPaywall(t, cs, f.clock, &paywall.Options{IdempotencyWindow: window})
	var handled, replays atomic.Int64
	mux := http.NewServeMux()
	mux.Handle("POST /generate", p.Authenticate(p.Charge(10)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := paywall.CallerFromContext(r.Context())
		handled.Add(1)
		if c.Replay {
			replays.Add(1)
		}
	}))))

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[int]int{}
		start  = make(chan struct{})
	)
	send := func(key string) {
		defer wg.Done()
		r := request("POST", "/generate", keyPro, "")
		r.Header.Set("Idempotency-Key", key)
		<-start
		w := serve(mux, r)
		mu.Lock()
		counts[w.Code]++
		mu.Unlock()
	}
	for i := 0; i < copies; i++ {
		wg.Add(1)
		go send(`"same"`)
	}
	for i := 0; i < others; i++ {
		wg.Add(1)
		go send(strconv.Quote("other-" + strconv.Itoa(i)))
	}
	close(start)
	wg.Wait()

	if n := cs.spends.Load(); n != 1+others {
		t.Errorf("%d debits, want %d", n, 1+others)
	}
	if b := f.balance(t, "acct_pro"); b != 1000-10*(1+others) {
		t.Errorf("balance %d, want %d", b, 1000-10*(1+others))
	}
	if counts[200]+counts[409] != copies+others || counts[200] != int(handled.Load()) ||
		handled.Load()-replays.Load() != 1+others {
		t.Errorf("outcomes %v, handled %d, replays %d", counts, handled.Load(), replays.Load())
	}
}

// countingStore counts the debits made through it.
type countingStore struct {
	store.Store
	spends atomic.Int64
}

func (s *countingStore) Spend(ctx context.Context, id string, cost int64) (store.SpendResult, error) {
	res, err := s.Store.Spend(ctx, id, cost)
	if err == nil && res.OK {
		s.spends.Add(1)
	}
	return res, err
}

func (s *countingStore) Refund(ctx context.Context, id string, amount int64) (int64, error) {
	return s.Store.(store.Refunder).Refund(ctx, id, amount)
}
