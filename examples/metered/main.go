// Command metered is an LLM-style streaming API behind go402, on an
// in-memory store seeded with demo keys:
//
//	go run ./examples/metered [-addr :8080]
//
// POST /v1/completions takes {"prompt": "...", "max_tokens": N} and streams
// the completion as server-sent events, one token each. A token costs one
// credit: the paywall holds max_tokens credits before the stream starts
// (402 if the balance does not cover them), the handler reports every token
// it sends on the paywall's meter, and when it ends — finished, or cut
// short by the client — the tokens reported are debited and the rest of
// the hold released. Each account may start 10 completions a second and
// 1,000 a day (429 beyond).
package main

import (
	"context"
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
	"strconv"
	"strings"
	"time"

	"github.com/go402/go402/limiter"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

// Limits of the completions route, per account: a token bucket of 10 a
// second and a count of 1,000 a UTC day.
var (
	perSecond = store.RateLimit{Rate: 10, Burst: 10}
	perDay    = store.Window{Name: "daily", Burst: 1000, Period: store.PeriodDay}
)

// maxTokensLimit is the largest max_tokens a request may ask for.
const maxTokensLimit = 4096

// demoKeys are the keys the server is seeded with, and their accounts.
var demoKeys = []struct {
	raw     string
	account store.Account
}{
	{"sk_test_llm", store.Account{ID: "acct_llm", Plan: "pro", Status: store.StatusActive, Balance: 1000}},
	{"sk_test_low", store.Account{ID: "acct_low", Plan: "pro", Status: store.StatusActive, Balance: 20}},
}

// seed puts the demo accounts and keys into mem.
func seed(ctx context.Context, mem *store.Memory) error {
	for _, k := range demoKeys {
		if err := mem.PutAccount(ctx, k.account); err != nil {
			return err
		}
		if err := mem.PutKey(ctx, store.NewKey(k.raw, k.account.ID)); err != nil {
			return err
		}
	}
	return nil
}

// config is what newHandler needs besides the store; the zero value means
// the server's defaults.
type config struct {
	// clock is the time of the limiter and the paywall. Default time.Now.
	clock func() time.Time
	// pace waits before each token is sent, and returns an error to stop
	// the stream (its context's, when the client hung up). Default: 20 ms.
	pace func(ctx context.Context) error
	// onDecision, if set, sees every decision of the paywall and limiter.
	onDecision func(context.Context, paywall.Decision)
}

// newHandler returns the server's routes behind a metered paywall on s.
func newHandler(s store.Store, cfg config) (http.Handler, error) {
	if cfg.clock == nil {
		cfg.clock = time.Now
	}
	if cfg.pace == nil {
		cfg.pace = sleep(20 * time.Millisecond)
	}
	pw, err := paywall.New(s, &paywall.Options{PaymentURL: "/billing", OnDecision: cfg.onDecision, Clock: cfg.clock})
	if err != nil {
		return nil, err
	}
	lim, err := limiter.New(perSecond.Rate, perSecond.Burst, &limiter.Options{
		Name:       "burst",
		By:         limiter.ByAccount(),
		Windows:    []store.Window{perDay},
		OnDecision: cfg.onDecision,
		Clock:      cfg.clock,
	})
	if err != nil {
		return nil, err
	}
	metered := pw.ChargeWith(paywall.ChargeOptions{Metered: true, CostFunc: maxTokens, Lease: 5 * time.Minute})
	mux := http.NewServeMux()
	mux.Handle("POST /v1/completions", pw.Authenticate(lim.Handler(parseCompletion(metered(&completions{pace: cfg.pace})))))
	mux.Handle("GET /v1/balance", pw.Authenticate(http.HandlerFunc(balance)))
	mux.HandleFunc("GET /billing", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "This demo has no billing page: here customers would buy credits.\n")
	})
	return mux, nil
}

// sleep returns a pace that waits d, or until ctx ends.
func sleep(d time.Duration) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// completionRequest is the body of POST /v1/completions.
type completionRequest struct {
	Prompt    string `json:"prompt"`
	MaxTokens int64  `json:"max_tokens"`
}

// requestKey is the context key of a parsed completionRequest.
type requestKey struct{}

// parseCompletion decodes the request's body (at most 64 KiB) into its
// context, or answers 400.
func parseCompletion(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req completionRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		err := dec.Decode(&req)
		switch {
		case err != nil:
			err = errors.New("the body must be a JSON object {\"prompt\": string, \"max_tokens\": integer}")
		case req.MaxTokens < 1 || req.MaxTokens > maxTokensLimit:
			err = fmt.Errorf("max_tokens must be between 1 and %d", maxTokensLimit)
		}
		if err != nil {
			paywall.WriteDenial(w, r, &paywall.Denial{Code: paywall.CodeInvalidRequest, Detail: err.Error()})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestKey{}, &req)))
	})
}

// maxTokens is the metered charge's CostFunc: the most a completion may
// cost, one credit per token.
func maxTokens(r *http.Request) (int64, error) {
	req, ok := r.Context().Value(requestKey{}).(*completionRequest)
	if !ok {
		return 0, errors.New("no completion request")
	}
	return req.MaxTokens, nil
}

// reply is what the demo model answers, a word a token, whatever the prompt.
var reply = strings.Fields(`A metered request holds its most cost before the handler runs,
reports what it really cost as it streams, and is charged exactly that when it ends.`)

// completions streams a completion as server-sent events: one "token"
// event a token, reported on the request's meter once sent, then a "done"
// event with the usage. It stops at max_tokens, at the end of the reply,
// or when the client hangs up.
type completions struct {
	pace func(ctx context.Context) error
}

func (c *completions) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, ok := r.Context().Value(requestKey{}).(*completionRequest)
	if !ok {
		http.Error(w, "completions: served without parseCompletion in front", http.StatusInternalServerError)
		return
	}
	meter := paywall.MeterFrom(r.Context())
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	var sent int64
	for sent < req.MaxTokens && sent < int64(len(reply)) {
		if c.pace(r.Context()) != nil {
			return // the client hung up: what was sent is charged
		}
		if err := writeEvent(w, "token", map[string]any{"index": sent, "text": reply[sent]}); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
		sent++
		meter.Add(1)
	}
	_ = writeEvent(w, "done", map[string]any{"tokens": sent, "max_tokens": req.MaxTokens})
}

// balance answers the caller's balance, with credits held by streams in
// flight already out of it.
func balance(w http.ResponseWriter, r *http.Request) {
	c, _ := paywall.CallerFromContext(r.Context())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"account": c.Account.ID, "balance": c.Balance})
}

// writeEvent writes one server-sent event named name with v as JSON data.
func writeEvent(w io.Writer, name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, "event: "+name+"\ndata: "+string(data)+"\n\n")
	return err
}

// printBanner writes what the server serves, and how to try it.
func printBanner(w io.Writer, addr string) {
	base := "http://" + addr
	if strings.HasPrefix(addr, ":") {
		base = "http://localhost" + addr
	}
	fmt.Fprintf(w, "go402 metered example listening on %s\n\n", base)
	fmt.Fprintf(w, "  POST /v1/completions  {\"prompt\": ..., \"max_tokens\": N}: holds N credits, streams, charges the tokens sent\n")
	fmt.Fprintf(w, "  GET /v1/balance       the caller's balance\n")
	fmt.Fprintf(w, "  limits per account: %g a second, %s a day\n\n",
		perSecond.Rate, strconv.Itoa(perDay.Burst))
	for _, k := range demoKeys {
		fmt.Fprintf(w, "  key %-12s %d credits\n", k.raw, k.account.Balance)
	}
	fmt.Fprintf(w, "\nTry:\n  curl -N -H 'Authorization: Bearer sk_test_llm' -d '{\"prompt\":\"hi\",\"max_tokens\":50}' %s/v1/completions\n\n", base)
}

func main() {
	addr := flag.String("addr", ":8080", "address to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	mem := store.NewMemory(nil)
	if err := seed(ctx, mem); err != nil {
		log.Fatal(err)
	}
	h, err := newHandler(mem, config{})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	printBanner(os.Stdout, *addr)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
