package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
	"github.com/go402/go402/store/storetest"
)

// testServer is the example's handler on a seeded memory store, a fake
// clock, a pace the test drives (when step is set) and the settlements
// made.
type testServer struct {
	h       http.Handler
	mem     *store.Memory
	clock   *storetest.Clock // from 2025-01-01T00:00:00Z
	step    chan struct{}    // if set, each token waits for one receive
	settled chan paywall.Decision
}

func newTestServer(t *testing.T, paced bool) *testServer {
	t.Helper()
	ts := &testServer{clock: new(storetest.Clock), settled: make(chan paywall.Decision, 2000)}
	ts.mem = store.NewMemory(&store.MemoryOptions{Clock: ts.clock.Now})
	if err := seed(context.Background(), ts.mem); err != nil {
		t.Fatal(err)
	}
	cfg := config{clock: ts.clock.Now, pace: func(context.Context) error { return nil }, onDecision: ts.onDecision}
	if paced {
		ts.step = make(chan struct{})
		cfg.pace = func(ctx context.Context) error {
			select {
			case <-ts.step:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	h, err := newHandler(ts.mem, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.h = h
	return ts
}

// onDecision passes settlements on to waitSettled.
func (ts *testServer) onDecision(_ context.Context, d paywall.Decision) {
	if d.Step == "settle" {
		ts.settled <- d
	}
}

// waitSettled returns the next settlement, or fails the test if none
// comes within 10 seconds.
func (ts *testServer) waitSettled(t *testing.T) paywall.Decision {
	t.Helper()
	select {
	case d := <-ts.settled:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no settlement")
		return paywall.Decision{}
	}
}

func (ts *testServer) balance(t *testing.T, id string) int64 {
	t.Helper()
	a, err := ts.mem.Account(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a.Balance
}

func completionRequestOf(key, body string) *http.Request {
	r := httptest.NewRequest("POST", "/v1/completions", strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+key)
	return r
}

// event is one server-sent event.
type event struct {
	name string
	data map[string]any
}

// readEvent reads the next server-sent event from br.
func readEvent(t *testing.T, br *bufio.Reader) (event, error) {
	t.Helper()
	var e event
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return e, err
		}
		switch line = strings.TrimSuffix(line, "\n"); {
		case line == "":
			return e, nil
		case strings.HasPrefix(line, "event: "):
			e.name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(line[len("data: "):]), &e.data); err != nil {
				t.Fatalf("data %q: %v", line, err)
			}
		}
	}
}

// A completion holds max_tokens while it streams, then debits the tokens
// it sent and releases the rest: one asking for more than the reply has is
// charged the reply's length.
func TestCompletionHoldsAndSettles(t *testing.T) {
	ts := newTestServer(t, true)
	srv := httptest.NewServer(ts.h)
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/v1/completions", strings.NewReader(`{"prompt":"hi","max_tokens":50}`))
	req.Header.Set("Authorization", "Bearer sk_test_llm")
	go func() { ts.step <- struct{}{} }()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	if e, err := readEvent(t, br); err != nil || e.name != "token" || e.data["text"] != reply[0] {
		t.Fatalf("first event %+v, %v", e, err)
	}
	if b := ts.balance(t, "acct_llm"); b != 1000-50 {
		t.Errorf("balance while streaming %d, want %d: max_tokens held", b, 1000-50)
	}
	go func() {
		for range len(reply) - 1 {
			ts.step <- struct{}{}
		}
	}()
	var last event
	for {
		e, err := readEvent(t, br)
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		last = e
	}
	n := int64(len(reply))
	if last.name != "done" || last.data["tokens"] != float64(n) {
		t.Errorf("last event %+v, want done with %d tokens", last, n)
	}
	if b := ts.balance(t, "acct_llm"); b != 1000-n {
		t.Errorf("balance after %d, want %d: the tokens sent debited, the rest released", b, 1000-n)
	}
	if d := ts.waitSettled(t); d.Cost != n || !d.Allowed {
		t.Errorf("settle %+v, want %d", d, n)
	}
}

// A client that hangs up mid-stream is charged the tokens reported before
// it did, and the rest of its hold is released.
func TestDisconnectChargesWhatWasReported(t *testing.T) {
	ts := newTestServer(t, true)
	srv := httptest.NewServer(ts.h)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/completions", strings.NewReader(`{"prompt":"hi","max_tokens":100}`))
	req.Header.Set("Authorization", "Bearer sk_test_llm")
	go func() { ts.step <- struct{}{} }()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	const read = 3
	for i := range read {
		if i > 0 {
			ts.step <- struct{}{}
		}
		if e, err := readEvent(t, br); err != nil || e.name != "token" {
			t.Fatalf("event %d: %+v, %v", i, e, err)
		}
	}
	cancel() // the handler waits for its next step: it sees the hang-up
	resp.Body.Close()
	if d := ts.waitSettled(t); d.Cost != read {
		t.Errorf("settled %d, want the %d tokens reported", d.Cost, read)
	}
	if b := ts.balance(t, "acct_llm"); b != 1000-read {
		t.Errorf("balance %d, want %d", b, 1000-read)
	}
}

// A balance that does not cover max_tokens is a 402 before anything
// streams, with nothing held; a bad body is a 400 before the hold.
func TestRefusals(t *testing.T) {
	ts := newTestServer(t, false)
	for _, tc := range []struct {
		name, key, body string
		status          int
		code            string
	}{
		{"hold not covered", "sk_test_low", `{"prompt":"hi","max_tokens":21}`, 402, "insufficient_credits"},
		{"no max_tokens", "sk_test_low", `{"prompt":"hi"}`, 400, "invalid_request"},
		{"negative max_tokens", "sk_test_low", `{"prompt":"hi","max_tokens":-1}`, 400, "invalid_request"},
		{"max_tokens too large", "sk_test_llm", `{"prompt":"hi","max_tokens":4097}`, 400, "invalid_request"},
		{"not JSON", "sk_test_low", `max_tokens=5`, 400, "invalid_request"},
		{"unknown key", "sk_test_nobody", `{"prompt":"hi","max_tokens":5}`, 401, "invalid_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			ts.h.ServeHTTP(w, completionRequestOf(tc.key, tc.body))
			var p struct{ Code string }
			_ = json.Unmarshal(w.Body.Bytes(), &p)
			if w.Code != tc.status || p.Code != tc.code {
				t.Errorf("%d %q, want %d %q; body %s", w.Code, p.Code, tc.status, tc.code, w.Body)
			}
		})
	}
	if b := ts.balance(t, "acct_low"); b != 20 {
		t.Errorf("balance %d, want 20: nothing held or debited", b)
	}
	w := httptest.NewRecorder()
	ts.h.ServeHTTP(w, completionRequestOf("sk_test_low", `{"prompt":"hi","max_tokens":20}`))
	if w.Code != 200 || ts.balance(t, "acct_low") != 20-min(20, int64(len(reply))) {
		t.Errorf("max_tokens = balance: %d, balance %d", w.Code, ts.balance(t, "acct_low"))
	}
}

// An account may start 10 completions a second and 1,000 a day: the 11th
// in a second is a 429 naming "burst", the 1,001st in a day one naming
// "daily", with nothing held for either; the next day it may start again.
func TestWindows(t *testing.T) {
	ts := newTestServer(t, false)
	start := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		ts.h.ServeHTTP(w, completionRequestOf("sk_test_llm", `{"prompt":"hi","max_tokens":1}`))
		return w
	}
	for i := range 1000 {
		if i > 0 && i%10 == 0 {
			ts.clock.Advance(time.Second)
		}
		if w := start(); w.Code != 200 {
			t.Fatalf("request %d: %d %s", i+1, w.Code, w.Body)
		}
		if i == 9 {
			checkLimited(t, start(), "burst")
		}
	}
	ts.clock.Advance(time.Second)
	checkLimited(t, start(), "daily")
	if b := ts.balance(t, "acct_llm"); b != 0 {
		t.Errorf("balance %d, want 0: 1,000 completions of one token", b)
	}
	ts.clock.Advance(24 * time.Hour) // the next UTC day
	if err := ts.mem.PutAccount(context.Background(), store.Account{ID: "acct_llm", Plan: "pro", Status: store.StatusActive, Balance: 1}); err != nil {
		t.Fatal(err)
	}
	if w := start(); w.Code != 200 {
		t.Errorf("next day: %d %s", w.Code, w.Body)
	}
}

// checkLimited checks that w is a 429 whose problem names window alone.
func checkLimited(t *testing.T, w *httptest.ResponseRecorder, window string) {
	t.Helper()
	var p struct {
		Code     string   `json:"code"`
		Violated []string `json:"violated-policies"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &p)
	if w.Code != 429 || p.Code != "rate_limited" || len(p.Violated) != 1 || p.Violated[0] != window || w.Header().Get("Retry-After") == "" {
		t.Errorf("%d %+v, Retry-After %q; want 429 rate_limited violating %q", w.Code, p, w.Header().Get("Retry-After"), window)
	}
}
