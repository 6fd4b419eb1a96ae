package paywall_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
)

func TestCharge(t *testing.T) {
	const pay, upgrade = "https://example.com/pay", "https://example.com/upgrade"
	costFromQuery := func(r *http.Request) (int64, error) {
		n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil {
			return 0, errors.New("n must be an integer")
		}
		return n, nil
	}
	tests := []struct {
		name        string
		key         string
		opts        paywall.ChargeOptions
		target      string
		spendErr    error
		failOpen    bool
		wantStatus  int
		wantCode    string
		wantBalance int64 // the account's balance afterwards
		wantRetry   string
		wantRefill  string
		wantPayment string
		wantUpgrade string
	}{
		{"covered", keyPro, paywall.ChargeOptions{Cost: 10}, "/", nil, false, 200, "", 990, "", "", "", ""},
		{"whole balance", keyPro, paywall.ChargeOptions{Cost: 1000}, "/", nil, false, 200, "", 0, "", "", "", ""},
		{"insufficient", keyFree, paywall.ChargeOptions{Cost: 10}, "/", nil, false, 402, "insufficient_credits", 0, "", "", pay, ""},
		{"just over", keyPro, paywall.ChargeOptions{Cost: 1001}, "/", nil, false, 402, "insufficient_credits", 1000, "", "", pay, ""},
		{"quota exhausted", keyQuota, paywall.ChargeOptions{Cost: 10}, "/", nil, false, 402, "quota_exhausted", 0,
			"82800", "2025-03-02T11:00:00Z", pay, upgrade},
		{"beyond any refill", keyQuota, paywall.ChargeOptions{Cost: 101}, "/", nil, false, 402, "insufficient_credits", 0, "", "", pay, ""},
		{"free request", keyFree, paywall.ChargeOptions{}, "/", nil, false, 200, "", 0, "", "", "", ""},
		{"free request, store down", keyFree, paywall.ChargeOptions{}, "/", errBackend, false, 200, "", 0, "", "", "", ""},
		{"cost func", keyPro, paywall.ChargeOptions{CostFunc: costFromQuery}, "/?n=25", nil, false, 200, "", 975, "", "", "", ""},
		{"cost func error", keyPro, paywall.ChargeOptions{CostFunc: costFromQuery}, "/?n=x", nil, false, 400, "invalid_request", 1000, "", "", "", ""},
		{"cost func negative", keyPro, paywall.ChargeOptions{CostFunc: costFromQuery}, "/?n=-5", nil, false, 400, "invalid_request", 1000, "", "", "", ""},
		{"store down", keyPro, paywall.ChargeOptions{Cost: 10}, "/", errBackend, false, 503, "store_unavailable", 1000, "1", "", "", ""},
		{"store down, fail open", keyPro, paywall.ChargeOptions{Cost: 10}, "/", errBackend, true, 200, "", 1000, "", "", "", ""},
		{"account gone", keyPro, paywall.ChargeOptions{Cost: 10}, "/", fmt.Errorf("gone: %w", store.ErrNotFound), false, 401, "invalid_key", 1000, "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			fs := &failingStore{Store: f.mem, spendErr: tt.spendErr}
			var got decisions
			p := newPaywall(t, fs, f.clock, &paywall.Options{
				FailOpen: tt.failOpen, PaymentURL: pay, UpgradeURL: upgrade, OnDecision: got.record,
			})
			var caller paywall.Caller
			h := p.Authenticate(p.ChargeWith(tt.opts)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, _ := paywall.CallerFromContext(r.Context())
				caller = *c
				_, _ = io.WriteString(w, "ok")
			})))
			w := serve(h, request("POST", tt.target, tt.key, ""))
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			var acct string
			if caller.Account.ID != "" {
				acct = caller.Account.ID
			} else {
				_, a, _ := f.mem.Lookup(context.Background(), store.DigestOf(tt.key))
				acct = a.ID
			}
			if b := f.balance(t, acct); b != tt.wantBalance {
				t.Errorf("balance %d, want %d", b, tt.wantBalance)
			}
			if got := w.Header().Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetry)
			}
			dl := got.all()
			last := dl[len(dl)-1]
			if last.Step != "charge" {
				t.Fatalf("last decision %+v", last)
			}
			if tt.wantStatus == 200 {
				charged := int64(1000) - tt.wantBalance
				if tt.key != keyPro {
					charged = 0
				}
				if caller.Charged != charged || caller.Balance != tt.wantBalance {
					t.Errorf("Caller charged %d balance %d, want %d, %d", caller.Charged, caller.Balance, charged, tt.wantBalance)
				}
				wantCost := charged
				if tt.failOpen {
					wantCost = tt.opts.Cost // what it would have cost
				}
				if !last.Allowed || last.Cost != wantCost || (tt.failOpen != (last.Code == paywall.CodeStoreUnavailable)) {
					t.Errorf("decision %+v", last)
				}
				return
			}
			pr := decodeProblem(t, w)
			if pr.Code != tt.wantCode || pr.RefillAt != tt.wantRefill || pr.PaymentURL != tt.wantPayment || pr.UpgradeURL != tt.wantUpgrade {
				t.Errorf("problem %+v", pr)
			}
			if tt.wantStatus == 402 && (pr.Balance == nil || *pr.Balance != tt.wantBalance || pr.Cost != tt.opts.Cost) {
				t.Errorf("problem balance/cost %+v", pr)
			}
			if last.Allowed || string(last.Code) != tt.wantCode || last.Status != tt.wantStatus {
				t.Errorf("decision %+v", last)
			}
		})
	}
}

func TestChargeStacks(t *testing.T) {
	f := newFixture(t)
	p := f.paywall(t, nil)
	var caller *paywall.Caller
	h := p.Authenticate(p.Charge(10)(p.Charge(5)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, _ = paywall.CallerFromContext(r.Context())
	}))))
	if w := serve(h, request("POST", "/", keyPro, "")); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	if caller.Charged != 15 || caller.Balance != 985 || caller.Account.Balance != 1000 {
		t.Errorf("Caller %+v", caller)
	}
}

func TestChargePanics(t *testing.T) {
	f := newFixture(t)
	p := f.paywall(t, nil)
	noRefunds := newPaywall(t, struct{ store.Store }{f.mem}, f.clock, nil)
	for name, fn := range map[string]func(){
		"negative cost":      func() { p.Charge(-1) },
		"refund unsupported": func() { noRefunds.ChargeWith(paywall.ChargeOptions{Cost: 1, Refund: true}) },
		"nil handler":        func() { p.Charge(1)(nil) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			fn()
		})
	}
	// Without Refund, a store without Refunder is fine.
	noRefunds.Charge(1)
}

func TestChargeRefund(t *testing.T) {
	tests := []struct {
		name        string
		refundIf    func(int) bool
		handler     http.HandlerFunc
		refundErr   error
		wantBalance int64
		wantPanic   bool
		wantRefund  string // "", "ok" or "failed": the refund decision
	}{
		{"200 kept", nil, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }, nil, 990, false, ""},
		{"nothing written kept", nil, func(w http.ResponseWriter, r *http.Request) {}, nil, 990, false, ""},
		{"body only kept", nil, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "x") }, nil, 990, false, ""},
		{"404 kept", nil, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, nil, 990, false, ""},
		{"500 refunded", nil, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }, nil, 1000, false, "ok"},
		{"503 refunded", nil, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }, nil, 1000, false, "ok"},
		{"first status counts", nil, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			w.WriteHeader(500) // superfluous, ignored by net/http
		}, nil, 990, false, ""},
		{"1xx skipped", nil, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(502)
		}, nil, 1000, false, "ok"},
		{"custom 4xx refunded", func(s int) bool { return s >= 400 }, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, nil, 1000, false, "ok"},
		{"panic refunded once", nil, func(w http.ResponseWriter, r *http.Request) { panic("handler bug") }, nil, 1000, true, "ok"},
		{"panic after 200 refunded", nil, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "partial")
			panic(http.ErrAbortHandler)
		}, nil, 1000, true, "ok"},
		{"refund fails", nil, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, errBackend, 990, false, "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			fs := &failingStore{Store: f.mem, refundErr: tt.refundErr}
			var got decisions
			p := newPaywall(t, fs, f.clock, &paywall.Options{OnDecision: got.record})
			h := p.Authenticate(p.ChargeWith(paywall.ChargeOptions{Cost: 10, Refund: true, RefundIf: tt.refundIf})(tt.handler))
			func() {
				defer func() {
					if r := recover(); (r != nil) != tt.wantPanic {
						t.Errorf("panic %v, want panic %v", r, tt.wantPanic)
					}
				}()
				serve(h, request("POST", "/", keyPro, ""))
			}()
			if b := f.balance(t, "acct_pro"); b != tt.wantBalance {
				t.Errorf("balance %d, want %d", b, tt.wantBalance)
			}
			var refunds []paywall.Decision
			for _, d := range got.all() {
				if d.Step == "refund" {
					refunds = append(refunds, d)
				}
			}
			switch tt.wantRefund {
			case "":
				if len(refunds) != 0 {
					t.Errorf("refund decisions %+v", refunds)
				}
			case "ok":
				if len(refunds) != 1 || !refunds[0].Allowed || refunds[0].Cost != 10 || refunds[0].Balance != 1000 || refunds[0].AccountID != "acct_pro" {
					t.Errorf("refund decisions %+v", refunds)
				}
			case "failed":
				if len(refunds) != 1 || refunds[0].Allowed || refunds[0].Code != paywall.CodeStoreUnavailable {
					t.Errorf("refund decisions %+v", refunds)
				}
			}
		})
	}
}

// TestChargeRefundStreams checks that with refunds on, the response is not
// buffered: what the handler flushes reaches the client while the handler
// is still running, and http.ResponseController reaches the connection
// through the wrapper.
func TestChargeRefundStreams(t *testing.T) {
	f := newFixture(t)
	p := f.paywall(t, nil)
	release := make(chan struct{})
	handlerErr := make(chan error, 1)
	h := p.Authenticate(p.ChargeWith(paywall.ChargeOptions{Cost: 10, Refund: true})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			handlerErr <- errors.New("ResponseWriter is not an http.Flusher")
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			handlerErr <- fmt.Errorf("SetWriteDeadline: %v", err)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "data: second\n\n")
		if err := rc.Flush(); err != nil {
			handlerErr <- fmt.Errorf("ResponseController.Flush: %v", err)
			return
		}
		handlerErr <- nil
	})))
	srv := httptest.NewServer(h)
	defer srv.Close()

	req, _ := http.NewRequest("POST", srv.URL, nil)
	req.Header.Set("Authorization", "Bearer "+keyPro)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	// The handler is still blocked: the first event came through a flush.
	close(release)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "\ndata: second\n\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
	if err := <-handlerErr; err != nil {
		t.Fatal(err)
	}
	if b := f.balance(t, "acct_pro"); b != 990 {
		t.Errorf("balance %d, want 990", b)
	}
}

// TestChargeRefundHijack checks that Hijack reaches the connection through
// the refund wrapper, and that a hijacked connection is not refunded.
func TestChargeRefundHijack(t *testing.T) {
	f := newFixture(t)
	p := f.paywall(t, nil)
	h := p.Authenticate(p.ChargeWith(paywall.ChargeOptions{Cost: 10, Refund: true})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked")
		_ = buf.Flush()
	})))
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL, nil)
	req.Header.Set("X-API-Key", keyPro)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hijacked" {
		t.Errorf("body %q", body)
	}
	if b := f.balance(t, "acct_pro"); b != 990 {
		t.Errorf("balance %d, want 990", b)
	}
}

// TestChargeRefundReadFrom checks that io.Copy onto the wrapped writer
// works and records the status.
func TestChargeRefundReadFrom(t *testing.T) {
	f := newFixture(t)
	p := f.paywall(t, nil)
	h := p.Authenticate(p.ChargeWith(paywall.ChargeOptions{Cost: 10, Refund: true})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(io.ReaderFrom); !ok {
			t.Error("not an io.ReaderFrom")
		}
		_, _ = io.Copy(w, io.LimitReader(neverEnding('x'), 5))
	})))
	w := serve(h, request("POST", "/", keyPro, ""))
	if w.Code != 200 || w.Body.String() != "xxxxx" {
		t.Errorf("status %d body %q", w.Code, w.Body)
	}
	if b := f.balance(t, "acct_pro"); b != 990 {
		t.Errorf("balance %d, want 990", b)
	}
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}
