package echo402_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/labstack/echo/v4"

	"github.com/go402/go402/adapters/echo402"
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

	e := echo.New()
	charge := pw.ChargeWith(paywall.ChargeOptions{Cost: 10, Refund: true}) // refunded on a status ≥ 500
	e.POST("/generate", func(c echo.Context) error {
		caller, _ := paywall.CallerFromContext(c.Request().Context())
		return c.JSON(http.StatusOK, map[string]any{"account": caller.Account.ID, "balance": caller.Balance})
	}, echo402.Wrap(pw.Authenticate), echo402.Wrap(charge))

	srv := httptest.NewServer(e)
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
