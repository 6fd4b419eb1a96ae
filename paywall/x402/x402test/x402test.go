// Package x402test provides a demo x402 facilitator that speaks the real REST
// API (POST /verify, POST /settle, GET /supported) over HTTP, and builds the
// payment headers it accepts, for tests and local try-outs of
// [github.com/go402/go402/paywall/x402].
//
// It is a demo, not a payment network: no money moves and nothing is
// signed. A payment is "valid" when its payload carries the signature
// [DemoSignature] and a fresh nonce; settling it records the nonce, so a
// payment settles once, as on a real chain.
//
//	f := x402test.NewFacilitator()
//	srv := httptest.NewServer(f)
//	defer srv.Close()
//	client, _ := x402.NewFacilitatorClient(srv.URL, nil)
package x402test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go402/go402/paywall/x402"
)

// DemoSignature is the signature a demo payment must carry to be valid.
const DemoSignature = "x402test-demo-signature"

// DemoPayer is the payer of payments built by [Pay] and [PayV1].
const DemoPayer = "0x000000000000000000000000000000000000dE30"

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
	// Hang answers nothing until the client gives up or the server closes.
	Hang
)

// Facilitator is a demo facilitator; it implements [http.Handler]. Its
// methods are safe for concurrent use.
type Facilitator struct {
	// Auth, if set, is the Authorization header value every request must
	// carry; others get 401. Set it before serving.
	Auth string

	verify, settle atomic.Int32
	verifies       atomic.Int64
	settlements    atomic.Int64

	mu      sync.Mutex
	settled map[string]bool // nonces
	done    chan struct{}
	once    sync.Once
}

// NewFacilitator returns a facilitator that accepts valid demo payments.
func NewFacilitator() *Facilitator {
	return &Facilitator{settled: make(map[string]bool), done: make(chan struct{})}
}

// SetVerify sets how POST /verify answers.
func (f *Facilitator) SetVerify(b Behavior) { f.verify.Store(int32(b)) }

// SetSettle sets how POST /settle answers.
func (f *Facilitator) SetSettle(b Behavior) { f.settle.Store(int32(b)) }

// Verifies returns the number of /verify requests answered.
func (f *Facilitator) Verifies() int { return int(f.verifies.Load()) }

// Settlements returns the number of payments settled successfully.
func (f *Facilitator) Settlements() int { return int(f.settlements.Load()) }

// Close releases requests that [Hang]. Call it before closing the server.
func (f *Facilitator) Close() { f.once.Do(func() { close(f.done) }) }

// demoPayload is the scheme payload of a demo payment.
type demoPayload struct {
	Signature string `json:"signature"`
	Nonce     string `json:"nonce"`
	From      string `json:"from"`
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
		writeJSON(w, x402.SupportedResponse{Kinds: []x402.SupportedKind{
			{X402Version: 2, Scheme: "exact", Network: "eip155:84532"},
			{X402Version: 1, Scheme: "exact", Network: "base-sepolia"},
		}})
	case r.Method == http.MethodPost && path == "verify":
		f.verifies.Add(1)
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
		select {
		case <-r.Context().Done():
		case <-f.done:
		}
		return
	}
	reason, payer, network, amount, nonce := f.check(r)
	if b == Refuse && reason == "" {
		reason = "insufficient_funds"
	}
	if !settle {
		writeJSON(w, x402.VerifyResponse{IsValid: reason == "", InvalidReason: reason, Payer: payer})
		return
	}
	if reason == "" {
		f.mu.Lock()
		if f.settled[nonce] {
			reason = "invalid_transaction_state"
		} else {
			f.settled[nonce] = true
		}
		f.mu.Unlock()
	}
	if reason != "" {
		writeJSON(w, x402.SettleResponse{ErrorReason: reason, Payer: payer, Network: network})
		return
	}
	f.settlements.Add(1)
	writeJSON(w, x402.SettleResponse{
		Success:     true,
		Payer:       payer,
		Transaction: txHash(nonce),
		Network:     network,
		Amount:      amount,
	})
}

// check validates a /verify or /settle request and returns the reason it
// is invalid ("" if valid) and what it says.
func (f *Facilitator) check(r *http.Request) (reason, payer, network, amount, nonce string) {
	var req request
	if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20)).Decode(&req); err != nil {
		return "invalid_payload", "", "", "", ""
	}
	var demo demoPayload
	switch req.X402Version {
	case 2:
		var p x402.PaymentPayload
		var q x402.PaymentRequirements
		if json.Unmarshal(req.PaymentPayload, &p) != nil || json.Unmarshal(req.PaymentRequirements, &q) != nil ||
			json.Unmarshal(p.Payload, &demo) != nil {
			return "invalid_payload", "", "", "", ""
		}
		network, amount = q.Network, q.Amount
		a := p.Accepted
		if a.Scheme != q.Scheme || a.Network != q.Network || a.Amount != q.Amount ||
			!strings.EqualFold(a.PayTo, q.PayTo) || !strings.EqualFold(a.Asset, q.Asset) {
			return "invalid_payment_requirements", demo.From, network, amount, demo.Nonce
		}
	case 1:
		var p x402.PaymentPayloadV1
		var q x402.PaymentRequirementsV1
		if json.Unmarshal(req.PaymentPayload, &p) != nil || json.Unmarshal(req.PaymentRequirements, &q) != nil ||
			json.Unmarshal(p.Payload, &demo) != nil {
			return "invalid_payload", "", "", "", ""
		}
		network, amount = q.Network, q.MaxAmountRequired
		if p.Scheme != q.Scheme || p.Network != q.Network {
			return "invalid_payment_requirements", demo.From, network, amount, demo.Nonce
		}
	default:
		return "invalid_x402_version", "", "", "", ""
	}
	if demo.Signature != DemoSignature || demo.Nonce == "" {
		return "invalid_payload", demo.From, network, amount, demo.Nonce
	}
	f.mu.Lock()
	used := f.settled[demo.Nonce]
	f.mu.Unlock()
	if used {
		return "invalid_transaction_state", demo.From, network, amount, demo.Nonce
	}
	return "", demo.From, network, amount, demo.Nonce
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
// payment and a fresh nonce: what an x402 client would build from a
// challenge.
func Pay(req x402.PaymentRequirements) string {
	v, err := x402.EncodeHeader(x402.PaymentPayload{X402Version: 2, Accepted: req, Payload: demo()})
	if err != nil {
		panic(err) // a PaymentRequirements always encodes
	}
	return v
}

// PayV1 returns an X-PAYMENT header value paying for req (x402 version 1)
// with a demo payment and a fresh nonce.
func PayV1(req x402.PaymentRequirementsV1) string {
	v, err := x402.EncodeHeader(x402.PaymentPayloadV1{X402Version: 1, Scheme: req.Scheme, Network: req.Network, Payload: demo()})
	if err != nil {
		panic(err)
	}
	return v
}

// PayChallenge decodes the PAYMENT-REQUIRED header value of a 402 and pays
// for its first requirement, as [Pay] does.
func PayChallenge(paymentRequired string) (string, error) {
	var pr x402.PaymentRequired
	if err := x402.DecodeHeader(paymentRequired, &pr); err != nil {
		return "", err
	}
	if len(pr.Accepts) == 0 {
		return "", x402.ErrMalformed
	}
	return Pay(pr.Accepts[0]), nil
}

func demo() json.RawMessage {
	var n [16]byte
	_, _ = rand.Read(n[:])
	b, _ := json.Marshal(demoPayload{Signature: DemoSignature, Nonce: hex.EncodeToString(n[:]), From: DemoPayer})
	return b
}
