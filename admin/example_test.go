package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/go402/go402/admin"
	"github.com/go402/go402/store"
)

// An admin API over a memory store, mounted under /admin/, creating an
// account and topping it up.
func Example() {
	st := store.NewMemory(nil)
	auth, err := admin.BearerTokens("example-admin-token-0123456789")
	if err != nil {
		panic(err)
	}
	h, err := admin.New(st, auth, nil)
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/", http.StripPrefix("/admin", h))

	call := func(method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer example-admin-token-0123456789")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec
	}
	fmt.Println(call("POST", "/admin/accounts", `{"id":"acct_1","plan":"pro"}`).Code)
	rec := call("POST", "/admin/accounts/acct_1/credits", `{"kind":"topup","amount":500,"operation_id":"inv_42"}`)
	var res struct{ Balance int64 }
	json.Unmarshal(rec.Body.Bytes(), &res)
	fmt.Println(rec.Code, res.Balance)
	a, _ := st.Account(context.Background(), "acct_1")
	fmt.Println(a.Plan, a.Balance)
	// Output:
	// 201
	// 200 500
	// pro 500
}
