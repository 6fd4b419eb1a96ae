// Package x402 lets clients without an API key pay per request with x402
// (https://x402.org), next to key holders who spend credits.
//
// A route gets a price with [Payments.Route]. A request without a key and
// without payment gets 402 with the x402 v2 challenge in the PAYMENT-REQUIRED
// header (base64 JSON [PaymentRequired]) and a problem+json body (or, for
// browsers, an HTML page) stating the price. The client pays by sending the
// request again with PAYMENT-SIGNATURE (base64 JSON [PaymentPayload]); the
// payment is verified through a [Facilitator], the handler runs, and the
// payment is settled when the handler commits to a status below 400 —
// before the first byte of its response leaves the server, without
// buffering the body. The receipt goes out in PAYMENT-RESPONSE. If the
// handler fails (status ≥ 400) nothing is settled; if settlement fails the
// client gets 402 and none of the handler's response. Requests with a key
// go through the route's key chain as before.
//
// The payment's accepted requirement must equal one of the route's in
// every field (scheme, network, amount, asset, payTo, maxTimeoutSeconds,
// extra), as in the reference server; only the letter case of EVM
// addresses may differ. A malformed payment header, or one over 16 KiB,
// gets 402 with a fresh challenge. One payment buys one response: sending
// a settled payment again is refused, unless [Options.RetryIdentity] lets
// its payer retry.
// If the facilitator's answer to a settlement is lost, the outcome is
// unknown and the client is told so ([CodeSettlementUnknown]); sending the
// same payment again settles it again, and a payment the facilitator
// reports as already settled is then served without a second charge.
//
//	pw, _ := paywall.New(st, nil)
//	facilitator, _ := x402.NewFacilitatorClient("https://x402.org/facilitator", nil)
//	pay, _ := x402.New(facilitator, nil)
//	mux.Handle("GET /weather", pay.Route(x402.Route{
//		Accepts: []x402.PaymentRequirements{{
//			Scheme: "exact", Network: "eip155:84532", Amount: "1000", // 0.001 USDC
//			Asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", PayTo: "0xYourAddress",
//			MaxTimeoutSeconds: 60, Extra: map[string]any{"name": "USDC", "version": "2"},
//		}},
//		Price: "0.001 USDC",
//		Keys: func(h http.Handler) http.Handler { return pw.Authenticate(pw.Charge(10)(h)) },
//	})(weather))
//
// Package [github.com/go402/go402/paywall/x402/x402test] has a demo
// facilitator for tests and local try-outs.
package x402
