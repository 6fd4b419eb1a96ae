package paywall_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// A new price watched in shadow mode before it is enforced: every request
// is served and nothing is debited; the ones the price would refuse say so
// in Paywall-Shadow, and OnDecision sees every would-be decision.
func ExampleOptions_shadow() {
	ctx := context.Background()
	mem := store.NewMemory(nil)
	_ = mem.PutAccount(ctx, store.Account{ID: "acme", Balance: 15})
	_ = mem.PutKey(ctx, store.NewKey("sk_test_acme", "acme"))

	pw, err := paywall.New(mem, &paywall.Options{
		Shadow: true,
		OnDecision: func(_ context.Context, d paywall.Decision) {
			if !d.Allowed {
				fmt.Printf("would refuse: %s %s (%d), cost %d\n", d.Step, d.Code, d.Status, d.Cost)
			}
		},
	})
	if err != nil {
		panic(err)
	}
	h := pw.Authenticate(pw.Charge(20)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "served")
	})))
	for _, key := range []string{"", "sk_test_acme"} {
		r := httptest.NewRequest("POST", "/generate", nil)
		if key != "" {
			r.Header.Set("Authorization", "Bearer "+key)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Body, w.Header().Get(paywall.HeaderPaywallShadow))
	}
	a, _ := mem.Account(ctx, "acme")
	fmt.Println("balance", a.Balance)
	// Output:
	// would refuse: authenticate missing_key (401), cost 0
	// 200 served "missing_key";status=401;step="authenticate"
	// would refuse: charge insufficient_credits (402), cost 20
	// 200 served "insufficient_credits";status=402;step="charge"
	// balance 15
}
