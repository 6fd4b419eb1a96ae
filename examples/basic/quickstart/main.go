package main

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

func main() {
	ctx := context.Background()

	// A store with one account of 1000 credits, and a new API key for it.
	mem := store.NewMemory(nil)
	err := mem.PutAccount(ctx, store.Account{ID: "acct_1", Plan: "pro", Status: store.StatusActive, Balance: 1000})
	if err != nil {
		log.Fatal(err)
	}
	key, _, err := mem.CreateKey(ctx, "acct_1", "sk_live_")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("API key:", key) // only its SHA-256 digest is stored: show it once

	pw, err := paywall.New(mem, &paywall.Options{PaymentURL: "https://example.com/billing"})
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("POST /generate", pw.Authenticate(pw.Charge(10)(http.HandlerFunc(generate))))
	log.Fatal(http.ListenAndServe(":8080", nil))
}

// generate is your handler. It can ask who called and what is left.
func generate(w http.ResponseWriter, r *http.Request) {
	c, _ := paywall.CallerFromContext(r.Context())
	fmt.Fprintf(w, "generated for %s; %d credits left\n", c.Account.ID, c.Balance)
}
