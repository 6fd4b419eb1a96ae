package gin402_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/gin-gonic/gin"

	"github.com/go402/go402/adapters/gin402"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

func Example() {
	ctx := context.Background()
	mem := store.NewMemory(nil)
	if err := mem.PutAccount(ctx, store.Account{ID: "acct_1", Status: store.StatusActive, Balance: 100}); err != nil {
		log.Fatal(err)
	}
	if err := mem.PutKey(ctx, store.NewKey("sk_test_123", "acct_1")); err != nil {
		log.Fatal(err)
	}
	pw, err := paywall.New(mem, nil)
	if err != nil {
		log.Fatal(err)
	}

	r := gin.New()
	charge := pw.ChargeWith(paywall.ChargeOptions{Cost: 10, Refund: true}) // refunded on a status ≥ 500
	r.POST("/generate", gin402.Wrap(pw.Authenticate), gin402.Wrap(charge), func(c *gin.Context) {
		caller, _ := paywall.CallerFromContext(c.Request.Context())
		c.JSON(http.StatusOK, gin.H{"account": caller.Account.ID, "balance": caller.Balance})
	})

	srv := httptest.NewServer(r)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/generate", nil)
	req.Header.Set("Authorization", "Bearer sk_test_123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	a, _ := mem.Account(ctx, "acct_1")
	fmt.Println(resp.StatusCode, a.Balance)
	// Output: 200 90
}
