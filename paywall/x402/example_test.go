package x402_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/paywall/x402"
	"github.com/go402/go402/paywall/x402/x402test"
	"github.com/go402/go402/store"
)

// A route that key holders pay for with credits and anyone else with x402.
func Example() {
	// A demo facilitator; in production, the URL of a real one.
	demo := x402test.NewFacilitator()
	facilitator := httptest.NewServer(demo)
	defer facilitator.Close()
	client, _ := x402.NewFacilitatorClient(facilitator.URL, nil)

	st := store.NewMemory(nil)
	_ = st.PutAccount(context.Background(), store.Account{ID: "acme", Balance: 100})
	_ = st.PutKey(context.Background(), store.NewKey("sk_test_acme_0123456789", "acme"))
	pw, _ := paywall.New(st, nil)
	pay, _ := x402.New(client, nil)

	weather := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "sunny\n")
	})
	mux := http.NewServeMux()
	mux.Handle("GET /weather", pay.Route(x402.Route{
		Accepts: []x402.PaymentRequirements{{
			Scheme: "exact", Network: "eip155:84532", Amount: "1000",
			Asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", PayTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
			MaxTimeoutSeconds: 60, Extra: map[string]any{"name": "USDC", "version": "2"},
		}},
		Price: "0.001 USDC",
		Keys:  func(h http.Handler) http.Handler { return pw.Authenticate(pw.Charge(10)(h)) },
	})(weather))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	get := func(name, value string) *http.Response {
		req, _ := http.NewRequest("GET", srv.URL+"/weather", nil)
		if name != "" {
			req.Header.Set(name, value)
		}
		resp, _ := http.DefaultClient.Do(req)
		resp.Body.Close()
		return resp
	}

	// No key, no payment: a challenge.
	resp := get("", "")
	var pr x402.PaymentRequired
	raw, _ := base64.StdEncoding.DecodeString(resp.Header.Get(x402.HeaderPaymentRequired)) // base64 JSON
	_ = json.Unmarshal(raw, &pr)
	fmt.Println(resp.StatusCode, pr.Accepts[0].Amount, pr.Accepts[0].Network)

	// Pay for it (an x402 client signs a real payment here).
	resp = get(x402.HeaderPaymentSignature, x402test.Pay(pr.Accepts[0]))
	var receipt x402.SettleResponse
	raw, _ = base64.StdEncoding.DecodeString(resp.Header.Get(x402.HeaderPaymentResponse))
	_ = json.Unmarshal(raw, &receipt)
	fmt.Println(resp.StatusCode, receipt.Success, demo.Settlements())

	// A key holder spends credits instead.
	resp = get("Authorization", "Bearer sk_test_acme_0123456789")
	acct, _ := st.Account(context.Background(), "acme")
	fmt.Println(resp.StatusCode, acct.Balance)
	// Output:
	// 402 1000 eip155:84532
	// 200 true 1
	// 200 90
}

// A route that only x402 payments open, with a handler that reads who paid.
func ExamplePayments_Route_paymentOnly() {
	demo := x402test.NewFacilitator()
	facilitator := httptest.NewServer(demo)
	defer facilitator.Close()
	client, _ := x402.NewFacilitatorClient(facilitator.URL, nil)
	pay, _ := x402.New(client, &x402.Options{BaseURL: "https://api.example.com"})

	price := x402.PaymentRequirements{
		Scheme: "exact", Network: "eip155:8453", Amount: "10000",
		Asset: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", PayTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
		MaxTimeoutSeconds: 60,
	}
	h := pay.Route(x402.Route{Mode: x402.PaymentOnly, Accepts: []x402.PaymentRequirements{price}, Price: "$0.01"})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, _ := x402.PaymentFromContext(r.Context())
			fmt.Fprintf(w, "paid by %s\n", p.Payer)
		}))

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/report", nil))
	var pr x402.PaymentRequired
	raw, _ := base64.StdEncoding.DecodeString(rec.Header().Get(x402.HeaderPaymentRequired))
	_ = json.Unmarshal(raw, &pr)
	fmt.Println(rec.Code, pr.Resource.URL)

	req := httptest.NewRequest("GET", "/report", nil)
	req.Header.Set(x402.HeaderPaymentSignature, x402test.Pay(pr.Accepts[0]))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output:
	// 402 https://api.example.com/report
	// 200 paid by 0x000000000000000000000000000000000000dE30
}

// tokenTransport adds the facilitator's credentials to every request. A
// token that changes per request (a JWT signed for each call, say) is made
// here too.
type tokenTransport struct{ token string }

func (t tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)
	return http.DefaultTransport.RoundTrip(r)
}

// A facilitator that wants credentials gets them from the client's
// Transport; the client's Timeout bounds each call as well.
func ExampleNewFacilitatorClient() {
	demo := x402test.NewFacilitator()
	demo.Auth = "Bearer facilitator-secret"
	srv := httptest.NewServer(demo)
	defer srv.Close()

	client, err := x402.NewFacilitatorClient(srv.URL, &http.Client{
		Transport: tokenTransport{token: "facilitator-secret"},
		Timeout:   30 * time.Second,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	req := x402.PaymentRequirements{
		Scheme: "exact", Network: "eip155:84532", Amount: "1000",
		Asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", PayTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
		MaxTimeoutSeconds: 60,
	}
	raw, _ := base64.StdEncoding.DecodeString(x402test.Pay(req))
	var payment x402.PaymentPayload
	_ = json.Unmarshal(raw, &payment)
	v, err := client.Verify(context.Background(), payment, req)
	fmt.Println(v.IsValid, err)
	// Output: true <nil>
}
