package x402test_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http/httptest"

	"github.com/go402/go402/paywall/x402"
	"github.com/go402/go402/paywall/x402/x402test"
)

// A demo facilitator behind a real HTTP server, verified and settled
// through the REST client.
func Example() {
	f := x402test.NewFacilitator()
	srv := httptest.NewServer(f)
	defer srv.Close()
	client, _ := x402.NewFacilitatorClient(srv.URL, nil)

	req := x402.PaymentRequirements{
		Scheme: "exact", Network: "eip155:84532", Amount: "1000",
		Asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", PayTo: "0x0000000000000000000000000000000000000402",
		MaxTimeoutSeconds: 60,
	}
	// The header value an x402 client would send: base64 JSON.
	raw, _ := base64.StdEncoding.DecodeString(x402test.Pay(req))
	var payment x402.PaymentPayload
	_ = json.Unmarshal(raw, &payment)

	ctx := context.Background()
	v, _ := client.Verify(ctx, payment, req)
	s, _ := client.Settle(ctx, payment, req)
	again, _ := client.Settle(ctx, payment, req) // a payment settles once
	fmt.Println(v.IsValid, s.Success, again.Success, again.ErrorReason)

	f.SetVerify(x402test.Refuse)
	v, _ = client.Verify(ctx, payment, req)
	fmt.Println(v.IsValid, v.InvalidReason)
	// Output:
	// true true false invalid_transaction_state
	// false invalid_transaction_state
}
