// Command paid is a pay-per-request API: key holders spend credits, anyone
// else pays each request with x402. It runs on an in-memory store and an
// in-process DEMO facilitator (package x402test) that accepts demo payments:
// no money moves and no real network is involved. Point x402.NewFacilitatorClient
// at a real facilitator to take real payments (credentials, if it wants
// them, go in the Transport of the *http.Client it is given).
//
//	go run ./examples/paid            # serves on localhost:8402
//	go run ./examples/paid -addr :9000
//
// At start-up it prints the curl commands to try and then runs the exchange
// once against itself, printing each request and answer.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/paywall/x402"
	"github.com/go402/go402/paywall/x402/x402test"
	"github.com/go402/go402/store"
)

// Demo keys seeded into the in-memory store.
const (
	keyPaid  = "sk_test_paid" // 100 credits
	keyBroke = "sk_test_broke"
)

// facilitatorPath is where the demo facilitator is mounted.
const facilitatorPath = "/demo-facilitator"

// joke is the price of GET /joke: 0.001 USDC (6 decimals) on Base Sepolia.
// PayTo is a placeholder: put your own address here.
var joke = x402.PaymentRequirements{
	Scheme:            "exact",
	Network:           "eip155:84532",
	Amount:            "1000",
	Asset:             "0x036CbD53842c5426634e7929541eC2318f3dCF7e", // USDC on Base Sepolia
	PayTo:             "0x0000000000000000000000000000000000000402",
	MaxTimeoutSeconds: 60,
	Extra:             map[string]any{"name": "USDC", "version": "2"},
}

func main() {
	addr := flag.String("addr", "localhost:8402", "listen address")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run serves on addr until ctx is done, after printing how to try it and
// one demonstration of the exchange to out.
func run(ctx context.Context, addr string, out io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	base := "http://" + loopback(ln.Addr())
	handler, err := newHandler(ctx, base+facilitatorPath, log.New(out, "paid: ", 0))
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	fmt.Fprintf(out, usage, base, base, base, base, base, base)
	if err := demo(ctx, base, out); err != nil {
		fmt.Fprintf(out, "demo exchange failed: %v\n", err)
	}

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

const usage = `go402 pay-per-request example on %s
DEMO facilitator: payments are simulated, no money moves.

Key holders spend credits (1 per joke):
  curl -i -H 'Authorization: Bearer sk_test_paid' %s/joke

Anyone else pays 0.001 USDC per request with x402:
  curl -i %s/joke                     # 402 + PAYMENT-REQUIRED challenge
  SIG=$(curl -si %s/joke | grep -i '^payment-required:' | cut -d' ' -f2 | tr -d '\r' \
        | curl -s --data-binary @- %s/demo/sign)   # the wallet's job, simulated
  curl -i -H "PAYMENT-SIGNATURE: $SIG" %s/joke   # 200 + PAYMENT-RESPONSE receipt

GET /stream is x402 only and streams its answer after the payment settles.

`

// loopback returns addr with an unspecified host replaced by loopback, so
// that the server can reach itself.
func loopback(addr net.Addr) string {
	a, ok := addr.(*net.TCPAddr)
	if !ok || !a.IP.IsUnspecified() {
		return addr.String()
	}
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(a.Port))
}

// newHandler wires the example: an in-memory store with demo keys, a
// paywall for keys and credits, x402 payments through the demo facilitator
// served under facilitatorPath, and the routes.
func newHandler(ctx context.Context, facilitatorURL string, logger *log.Logger) (http.Handler, error) {
	st := store.NewMemory(nil)
	for _, a := range []struct {
		key     string
		balance int64
	}{{keyPaid, 100}, {keyBroke, 0}} {
		id := "acct_" + strings.TrimPrefix(a.key, "sk_test_")
		if err := st.PutAccount(ctx, store.Account{ID: id, Plan: "pro", Balance: a.balance}); err != nil {
			return nil, err
		}
		if err := st.PutKey(ctx, store.NewKey(a.key, id)); err != nil {
			return nil, err
		}
	}
	pw, err := paywall.New(st, nil)
	if err != nil {
		return nil, err
	}

	facilitator, err := x402.NewFacilitatorClient(facilitatorURL, nil)
	if err != nil {
		return nil, err
	}
	pay, err := x402.New(facilitator, &x402.Options{
		OnSettle: func(ctx context.Context, p x402.Payment, r x402.SettleResponse, err error) {
			if err != nil || !r.Success {
				logger.Printf("settlement failed: %s %v", r.ErrorReason, err)
				return
			}
			logger.Printf("settled %s atomic units on %s from %s, tx %.18s…", r.Amount, r.Network, r.Payer, r.Transaction)
		},
	})
	if err != nil {
		return nil, err
	}
	keyed := func(h http.Handler) http.Handler { return pw.Authenticate(pw.Charge(1)(h)) }

	mux := http.NewServeMux()
	mux.Handle("GET /joke", pay.Route(x402.Route{
		Accepts:     []x402.PaymentRequirements{joke},
		Description: "A programming joke",
		MimeType:    "text/plain",
		Price:       "0.001 USDC",
		Keys:        keyed,
	})(http.HandlerFunc(serveJoke)))
	mux.Handle("GET /stream", pay.Route(x402.Route{
		Accepts:     []x402.PaymentRequirements{joke},
		Description: "Three jokes, streamed",
		MimeType:    "text/event-stream",
		Price:       "0.001 USDC",
		Mode:        x402.PaymentOnly,
	})(http.HandlerFunc(serveStream)))

	// DEMO ONLY: the facilitator and a "wallet" that signs demo payments.
	mux.Handle(facilitatorPath+"/", http.StripPrefix(facilitatorPath, x402test.NewFacilitator()))
	mux.HandleFunc("POST /demo/sign", serveSign)
	return mux, nil
}

func serveJoke(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	how := "paid with credits"
	if c, ok := paywall.CallerFromContext(r.Context()); ok {
		how = fmt.Sprintf("paid with credits, %d left", c.Balance)
	} else if p, ok := x402.PaymentFromContext(r.Context()); ok {
		how = "paid with x402 by " + p.Payer
	}
	fmt.Fprintf(w, "There are 10 kinds of people: those who understand binary and those who don't. (%s)\n", how)
}

// streamInterval is the pause between streamed lines.
var streamInterval = 200 * time.Millisecond

func serveStream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	for i, j := range []string{"Why do Go programmers wear glasses? They can't C.", "A SQL query walks into a bar, sees two tables and asks: may I join you?", "There is no place like 127.0.0.1."} {
		if i > 0 {
			select {
			case <-time.After(streamInterval):
			case <-r.Context().Done():
				return
			}
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", j); err != nil {
			return
		}
		_ = rc.Flush()
	}
}

// serveSign plays the client's wallet for the demo: it reads a
// PAYMENT-REQUIRED header value from the body and answers a demo
// PAYMENT-SIGNATURE value for its first requirement.
func serveSign(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<10))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	// The header value is base64 JSON of an x402.PaymentRequired.
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(body)))
	var challenge x402.PaymentRequired
	if err != nil || json.Unmarshal(raw, &challenge) != nil || len(challenge.Accepts) == 0 {
		http.Error(w, "send the PAYMENT-REQUIRED header value as the body", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, x402test.Pay(challenge.Accepts[0]))
}
