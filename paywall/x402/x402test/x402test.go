// Package x402test provides a demo x402 facilitator that speaks the real REST
// API (POST /verify, POST /settle, GET /supported) over HTTP, and builds the
// payment headers it accepts, for tests and local try-outs of
// [github.com/go402/go402/paywall/x402].
//
// It is a demo, not a payment network: no money moves and nothing is
// signed. A payment built by [Pay] carries a demo signature and a fresh
// nonce; settling it records the nonce, so a payment settles once, as on a
// real chain, and settling it again is refused with
// invalid_transaction_state.
//
//	f := x402test.NewFacilitator()
//	srv := httptest.NewServer(f)
//	defer srv.Close()
//	client, _ := x402.NewFacilitatorClient(srv.URL, nil)
package x402test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go402/go402/paywall/x402"
)

// demoSignature is the signature a demo payment must carry to be valid,
// and demoPayer the payer of the payments [Pay] builds.
const (
	demoSignature = "x402test-demo-signature"
	demoPayer     = "0x000000000000000000000000000000000000dE30"
)

// Behavior is how the facilitator answers one endpoint.
type Behavior int32

const (
	// Accept verifies and settles valid demo payments. The zero Behavior.
	Accept Behavior = iota
	// Refuse answers every payment as invalid (verify: isValid false,
	// "insufficient_funds"; settle: success false, "insufficient_funds").
	Refuse
	// Fail answers HTTP 500 with a non-JSON body.
	Fail
	// Hang answers nothing until the client gives up. It settles
	// nothing.
	Hang
)

// Facilitator is a demo facilitator; it implements [http.Handler]. Its
// methods are safe for concurrent use.
type Facilitator struct {
	// Auth, if set, is the Authorization header value every request must
	// carry; others get 401. Set it before serving.
	Auth string

	verify, settle atomic.Int32
	settlements    atomic.Int64

	mu      sync.Mutex
	settled map[string]bool // nonces
}

// NewFacilitator returns a facilitator that accepts valid demo payments.
func NewFacilitator() *Facilitator {
	return &Facilitator{settled: make(map[string]bool)}
}

// SetVerify sets how POST /verify answers.
func (f *Facilitator) SetVerify(b Behavior) { f.verify.Store(int32(b)) }

// SetSettle sets how POST /settle answers.
func (f *Facilitator) SetSettle(b Behavior) { f.settle.Store(int32(b)) }

// Settlements returns the number of payments settled successfully.
func (f *Facilitator) Settlements() int { return int(f.settlements.Load()) }

// demoPayload is the scheme payload of a demo payment.
type demoPayload struct {
	Signature string `json:"signature"`
	Nonce     string `json:"nonce"`
	From      string `json:"from"`
}

// supported is the answer of GET /supported: the (version, scheme,
// network) kinds the facilitator verifies and settles.
type supported struct {
	Kinds []kind `json:"kinds"`
}

type kind struct {
	X402Version int    `json:"x402Version"`
	Scheme      string `json:"scheme"`
	Network     string `json:"network"`
}

type request struct {
	X402Version         int             `json:"x402Version"`
	PaymentPayload      json.RawMessage `json:"paymentPayload"`
	PaymentRequirements json.RawMessage `json:"paymentRequirements"`
}

// ServeHTTP implements the facilitator REST API.
func (f *Facilitator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.Auth != "" && r.Header.Get("Authorization") != f.Auth {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	path := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	switch {
	case r.Method == http.MethodGet && path == "supported":
		writeJSON(w, supported{Kinds: []kind{
			{X402Version: 2, Scheme: "exact", Network: "eip155:84532"},
			{X402Version: 1, Scheme: "exact", Network: "base-sepolia"},
		}})
	case r.Method == http.MethodPost && path == "verify":
		f.answer(w, r, Behavior(f.verify.Load()), false)
	case r.Method == http.MethodPost && path == "settle":
		f.answer(w, r, Behavior(f.settle.Load()), true)
	default:
		http.NotFound(w, r)
	}
}

func (f *Facilitator) answer(w http.ResponseWriter, r *http.Request, b Behavior, settle bool) {
	switch b {
	case Fail:
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	case Hang:
		// Reading the whole body lets net/http notice the client leaving.
		_, _ = io.Copy(io.Discard, http.MaxBytesReader(nil, r.Body, 1<<20))
		<-r.Context().Done()
		return
	}
	c := f.check(r)
	if b == Refuse && c.reason == "" {
		c.reason = "insufficient_funds"
	}
	if !settle {
		writeJSON(w, x402.VerifyResponse{IsValid: c.reason == "", InvalidReason: c.reason, Payer: c.payer})
		return
	}
	if c.reason == "" {
		f.mu.Lock()
		if f.settled[c.nonce] {
			c.reason = "invalid_transaction_state"
		} else {
			f.settled[c.nonce] = true
		}
		f.mu.Unlock()
	}
	if c.reason != "" {
		writeJSON(w, x402.SettleResponse{ErrorReason: c.reason, Payer: c.payer, Network: c.network})
		return
	}
	f.settlements.Add(1)
	writeJSON(w, x402.SettleResponse{
		Success:     true,
		Payer:       c.payer,
		Transaction: txHash(c.nonce),
		Network:     c.network,
		Amount:      c.amount,
	})
}

// checked is what a /verify or /settle request says, and the reason it is
// invalid ("" if valid).
type checked struct {
	reason, payer, network, amount, nonce string
}

// requirementsV1 and payloadV1 are the members of x402 version 1 that the
// demo reads.
type requirementsV1 struct {
	Scheme            string `json:"scheme"`
	Network           string `json:"network"`
	MaxAmountRequired string `json:"maxAmountRequired"`
}

type payloadV1 struct {
	Scheme  string          `json:"scheme"`
	Network string          `json:"network"`
	Payload json.RawMessage `json:"payload"`
}

// check validates a /verify or /settle request.
func (f *Facilitator) check(r *http.Request) checked {
	var req request
	if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20)).Decode(&req); err != nil {
		return checked{reason: "invalid_payload"}
	}
	var (
		c    checked
		demo demoPayload
	)
	switch req.X402Version {
	case 2:
		c, demo = checkV2(req)
	case 1:
		c, demo = checkV1(req)
	default:
		return checked{reason: "invalid_x402_version"}
	}
	c.payer, c.nonce = demo.From, demo.Nonce
	if c.reason == "" && (demo.Signature != demoSignature || demo.Nonce == "") {
		c.reason = "invalid_payload"
	}
	if c.reason == "" && f.used(demo.Nonce) {
		c.reason = "invalid_transaction_state"
	}
	return c
}

func (f *Facilitator) used(nonce string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.settled[nonce]
}

func checkV2(req request) (checked, demoPayload) {
	var (
		p    x402.PaymentPayload
		q    x402.PaymentRequirements
		demo demoPayload
	)
	if json.Unmarshal(req.PaymentPayload, &p) != nil || json.Unmarshal(req.PaymentRequirements, &q) != nil ||
		json.Unmarshal(p.Payload, &demo) != nil {
		return checked{reason: "invalid_payload"}, demoPayload{}
	}
	c := checked{network: q.Network, amount: q.Amount}
	a := p.Accepted
	if a.Scheme != q.Scheme || a.Network != q.Network || a.Amount != q.Amount ||
		!strings.EqualFold(a.PayTo, q.PayTo) || !strings.EqualFold(a.Asset, q.Asset) {
		c.reason = "invalid_payment_requirements"
	}
	return c, demo
}

func checkV1(req request) (checked, demoPayload) {
	var (
		p    payloadV1
		q    requirementsV1
		demo demoPayload
	)
	if json.Unmarshal(req.PaymentPayload, &p) != nil || json.Unmarshal(req.PaymentRequirements, &q) != nil ||
		json.Unmarshal(p.Payload, &demo) != nil {
		return checked{reason: "invalid_payload"}, demoPayload{}
	}
	c := checked{network: q.Network, amount: q.MaxAmountRequired}
	if p.Scheme != q.Scheme || p.Network != q.Network {
		c.reason = "invalid_payment_requirements"
	}
	return c, demo
}

// txHash is the demo transaction hash of the payment with nonce.
func txHash(nonce string) string {
	h := sha256.Sum256([]byte(nonce))
	return "0x" + hex.EncodeToString(h[:])
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Pay returns a PAYMENT-SIGNATURE header value paying for req with a demo
// payment and a fresh nonce: what an x402 client builds from a challenge
// (decode the PAYMENT-REQUIRED header, base64 JSON, and pay one of its
// accepts).
func Pay(req x402.PaymentRequirements) string {
	b, _ := json.Marshal(x402.PaymentPayload{X402Version: 2, Accepted: req, Payload: demo()})
	return base64.StdEncoding.EncodeToString(b)
}

func demo() json.RawMessage {
	var n [16]byte
	_, _ = rand.Read(n[:])
	b, _ := json.Marshal(demoPayload{Signature: demoSignature, Nonce: hex.EncodeToString(n[:]), From: demoPayer})
	return b
}
