package paywall_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// database is a stand-in for an application's own database, reached by a
// callback store.
type database struct {
	mu       sync.Mutex
	keys     map[store.Digest]store.Key
	accounts map[string]store.Account
}

func (db *database) lookup(_ context.Context, d store.Digest) (store.Key, store.Account, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	k, ok := db.keys[d]
	if !ok {
		return store.Key{}, store.Account{}, store.ErrNotFound
	}
	return k, db.accounts[k.AccountID], nil
}

func (db *database) spend(_ context.Context, id string, cost int64) (store.SpendResult, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	a, ok := db.accounts[id]
	if !ok {
		return store.SpendResult{}, store.ErrNotFound
	}
	if a.Balance < cost {
		return store.SpendResult{Balance: a.Balance}, nil
	}
	a.Balance -= cost
	db.accounts[id] = a
	return store.SpendResult{OK: true, Balance: a.Balance}, nil
}

// TestConcurrentCharge sends 200 concurrent POST /generate costing 10 on an
// account holding 1000 credits: exactly 100 pass, 100 get 402
// insufficient_credits, and the balance ends at 0 — on the memory store and
// on a callback store.
func TestConcurrentCharge(t *testing.T) {
	const (
		key      = "sk_test_concurrent_0123456789"
		requests = 200
		cost     = 10
		credits  = 1000
	)
	acct := store.Account{ID: "acct_c", Plan: "pro", Status: store.StatusActive, Balance: credits}

	stores := map[string]func(t *testing.T) (store.Store, func() int64){
		"memory": func(t *testing.T) (store.Store, func() int64) {
			m := store.NewMemory(nil)
			ctx := context.Background()
			if err := m.PutAccount(ctx, acct); err != nil {
				t.Fatal(err)
			}
			if err := m.PutKey(ctx, store.NewKey(key, acct.ID)); err != nil {
				t.Fatal(err)
			}
			return m, func() int64 {
				a, err := m.Account(ctx, acct.ID)
				if err != nil {
					t.Fatal(err)
				}
				return a.Balance
			}
		},
		"callback": func(t *testing.T) (store.Store, func() int64) {
			db := &database{
				keys:     map[store.Digest]store.Key{store.DigestOf(key): store.NewKey(key, acct.ID)},
				accounts: map[string]store.Account{acct.ID: acct},
			}
			s, err := store.NewCallback(store.Callbacks{Lookup: db.lookup, Spend: db.spend}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return s, func() int64 {
				db.mu.Lock()
				defer db.mu.Unlock()
				return db.accounts[acct.ID].Balance
			}
		},
	}
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			s, balance := mk(t)
			p, err := paywall.New(s, nil)
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			mux.Handle("POST /generate", p.Authenticate(p.Charge(cost)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, _ := paywall.CallerFromContext(r.Context())
				_ = json.NewEncoder(w).Encode(map[string]int64{"balance": c.Balance})
			}))))

			var (
				wg     sync.WaitGroup
				mu     sync.Mutex
				counts = map[string]int{}
				start  = make(chan struct{})
			)
			for i := 0; i < requests; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := httptest.NewRequest("POST", "/generate", nil)
					r.Header.Set("Authorization", "Bearer "+key)
					<-start
					w := httptest.NewRecorder()
					mux.ServeHTTP(w, r)
					outcome := http.StatusText(w.Code)
					if w.Code == http.StatusPaymentRequired {
						var pr problem
						_ = json.Unmarshal(w.Body.Bytes(), &pr)
						outcome += " " + pr.Code
					}
					mu.Lock()
					counts[outcome]++
					mu.Unlock()
				}()
			}
			close(start)
			wg.Wait()
			want := map[string]int{"OK": 100, "Payment Required insufficient_credits": 100}
			if len(counts) != len(want) || counts["OK"] != 100 || counts["Payment Required insufficient_credits"] != 100 {
				t.Errorf("outcomes %v, want %v", counts, want)
			}
			if b := balance(); b != 0 {
				t.Errorf("final balance %d, want 0", b)
			}
		})
	}
}
