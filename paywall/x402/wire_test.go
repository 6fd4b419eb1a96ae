package x402_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/go402/go402/paywall/x402"
	"github.com/go402/go402/paywall/x402/x402test"
)

// keysOf returns the member names of a JSON object.
func keysOf(t *testing.T, raw []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, raw)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// wantMembers checks that the object has every required member, and no
// member outside required and optional (names exact, as in STANDARDS.md).
func wantMembers(t *testing.T, what string, raw []byte, required, optional []string) {
	t.Helper()
	keys := keysOf(t, raw)
	for _, k := range required {
		if !slices.Contains(keys, k) {
			t.Errorf("%s: required member %q missing; has %v", what, k, keys)
		}
	}
	for _, k := range keys {
		if !slices.Contains(required, k) && !slices.Contains(optional, k) {
			t.Errorf("%s: unexpected member %q", what, k)
		}
	}
}

func member(t *testing.T, raw []byte, name string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m[name]
}

func first(t *testing.T, raw []byte) []byte {
	t.Helper()
	var a []json.RawMessage
	if err := json.Unmarshal(raw, &a); err != nil || len(a) == 0 {
		t.Fatalf("not a non-empty array: %s", raw)
	}
	return a[0]
}

var requirementsV2 = []string{"scheme", "network", "amount", "asset", "payTo", "maxTimeoutSeconds"}

// TestGoldenV2 checks the version 2 header and body JSON of a live challenge,
// receipt and payment against the field lists of the specification.
func TestGoldenV2(t *testing.T) {
	e := newEnv(t, envConfig{route: x402.Route{MimeType: "application/json"}})
	resp, body := e.get()
	header, err := base64.StdEncoding.DecodeString(resp.Header.Get("PAYMENT-REQUIRED")) // strict: standard, padded
	if err != nil {
		t.Fatalf("PAYMENT-REQUIRED is not standard padded base64: %v", err)
	}
	wantMembers(t, "PaymentRequired", header, []string{"x402Version", "resource", "accepts"}, []string{"error", "extensions"})
	wantMembers(t, "resource", member(t, header, "resource"), []string{"url"}, []string{"description", "mimeType"})
	wantMembers(t, "accepts[0]", first(t, member(t, header, "accepts")), requirementsV2, []string{"extra"})
	if string(member(t, header, "x402Version")) != "2" {
		t.Errorf("x402Version = %s", member(t, header, "x402Version"))
	}
	want := `{"x402Version":2,"resource":{"url":"` + e.srv.URL + `/weather","description":"Weather report","mimeType":"application/json"},` +
		`"accepts":[{"scheme":"exact","network":"eip155:84532","amount":"1000","asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e",` +
		`"payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","maxTimeoutSeconds":60,"extra":{"name":"USDC","version":"2"}}]}`
	if string(header) != want {
		t.Errorf("PAYMENT-REQUIRED JSON\n got %s\nwant %s", header, want)
	}
	wantMembers(t, "problem body", []byte(body),
		[]string{"type", "title", "status", "detail", "code", "x402Version", "resource", "accepts"}, nil)

	resp, _ = e.get(x402.HeaderPaymentSignature, x402test.Pay(usdc))
	receipt, err := base64.StdEncoding.DecodeString(resp.Header.Get("PAYMENT-RESPONSE"))
	if err != nil {
		t.Fatal(err)
	}
	wantMembers(t, "SettleResponse", receipt, []string{"success", "transaction", "network"}, []string{"payer", "amount", "errorReason"})

	payment, _ := base64.StdEncoding.DecodeString(x402test.Pay(usdc))
	wantMembers(t, "PaymentPayload", payment, []string{"x402Version", "accepted", "payload"}, []string{"resource", "extensions"})
	wantMembers(t, "PaymentPayload.accepted", member(t, payment, "accepted"), requirementsV2, []string{"extra"})
}

func TestGoldenV2Failure(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.fac.SetSettle(x402test.Refuse)
	resp, _ := e.get(x402.HeaderPaymentSignature, x402test.Pay(usdc))
	receipt, err := base64.StdEncoding.DecodeString(resp.Header.Get("PAYMENT-RESPONSE"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"success":false,"errorReason":"insufficient_funds","payer":"` + demoPayer + `","transaction":"","network":"eip155:84532"}`
	if string(receipt) != want {
		t.Errorf("failed PAYMENT-RESPONSE\n got %s\nwant %s", receipt, want)
	}
	header, _ := base64.StdEncoding.DecodeString(resp.Header.Get("PAYMENT-REQUIRED"))
	if string(member(t, header, "error")) != `"insufficient_funds"` {
		t.Errorf("PAYMENT-REQUIRED error = %s", member(t, header, "error"))
	}
}

// TestGoldenV1 checks the version 1 body against the version 1 field list.
func TestGoldenV1(t *testing.T) {
	e := newEnv(t, envConfig{opts: &x402.Options{V1: true}})
	resp, body := e.get()
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("status %d", resp.StatusCode)
	}
	wantMembers(t, "v1 problem body", []byte(body),
		[]string{"type", "title", "status", "detail", "code", "x402Version", "error", "accepts"}, nil)
	wantMembers(t, "v1 accepts[0]", first(t, member(t, []byte(body), "accepts")),
		[]string{"scheme", "network", "maxAmountRequired", "asset", "payTo", "resource", "description", "maxTimeoutSeconds"},
		[]string{"mimeType", "outputSchema", "extra"})
	got := string(first(t, member(t, []byte(body), "accepts")))
	want := `{"scheme":"exact","network":"base-sepolia","maxAmountRequired":"1000","asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e",` +
		`"payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","resource":"` + e.srv.URL + `/weather","description":"Weather report",` +
		`"maxTimeoutSeconds":60,"extra":{"name":"USDC","version":"2"}}`
	if got != want {
		t.Errorf("v1 requirement\n got %s\nwant %s", got, want)
	}
	payment, _ := base64.StdEncoding.DecodeString(payV1(t, "exact", "base-sepolia"))
	wantMembers(t, "PaymentPayloadV1", payment, []string{"x402Version", "scheme", "network", "payload"}, nil)

	resp, _ = e.get(headerPaymentV1, payV1(t, "exact", "base-sepolia"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	receipt, err := base64.StdEncoding.DecodeString(resp.Header.Get("X-PAYMENT-RESPONSE"))
	if err != nil {
		t.Fatal(err)
	}
	wantMembers(t, "v1 SettleResponse", receipt, []string{"success", "transaction", "network"}, []string{"payer", "amount", "errorReason"})
}
