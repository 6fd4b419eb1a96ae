package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go402/go402/paywall/x402"
)

// syncBuffer collects output written from several goroutines and closes
// done when the demo exchange has been printed.
type syncBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
	once sync.Once
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	if strings.Contains(b.buf.String(), "--- end of demo exchange ---") {
		b.once.Do(func() { close(b.done) })
	}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRun starts the example as `go run` does and checks the exchange it
// prints at start-up.
func TestRun(t *testing.T) {
	out := &syncBuffer{done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, "127.0.0.1:0", out) }()
	select {
	case <-out.done:
	case err := <-errc:
		t.Fatalf("run returned early: %v\n%s", err, out)
	case <-time.After(30 * time.Second):
		t.Fatalf("no demo exchange after 30s:\n%s", out)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("run: %v", err)
	}
	text := out.String()
	for _, want := range []string{
		"DEMO facilitator",
		"curl -i -H 'Authorization: Bearer sk_test_paid'",
		`curl -i -H "PAYMENT-SIGNATURE: $SIG"`,
		"> GET /joke\n< 402 Payment Required\n< PAYMENT-REQUIRED: {\"x402Version\":2,",
		`"amount":"1000"`,
		`"code":"payment_required"`,
		"This request costs 0.001 USDC.",
		"> GET /joke with PAYMENT-SIGNATURE\n< 200 OK\n< PAYMENT-RESPONSE: {\"success\":true,",
		"paid with x402 by 0x",
		"paid: settled 1000 atomic units on eip155:84532",
		"> GET /joke with Authorization: Bearer sk_test_paid\n< 200 OK",
		"paid with credits, 99 left",
		"< 402 Payment Required (code insufficient_credits; PAYMENT-REQUIRED present: true)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "demo exchange failed") {
		t.Errorf("demo failed:\n%s", text)
	}
}

func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	h, err := newHandler(context.Background(), srv.URL+facilitatorPath, log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	handler = h
	return srv
}

func get(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// sign plays the curl pipeline of the usage text: PAYMENT-REQUIRED into
// POST /demo/sign.
func sign(t *testing.T, base string, challenge *http.Response) string {
	t.Helper()
	resp, err := http.Post(base+"/demo/sign", "text/plain", strings.NewReader(challenge.Header.Get("Payment-Required")))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

// TestDocumentedExchange follows the curl commands the example prints.
func TestDocumentedExchange(t *testing.T) {
	srv := newTestServer(t)

	challenge, body := get(t, srv.URL+"/joke")
	if challenge.StatusCode != http.StatusPaymentRequired || !strings.Contains(body, "0.001 USDC") {
		t.Fatalf("GET /joke: %d %s", challenge.StatusCode, body)
	}
	sig := sign(t, srv.URL, challenge)
	resp, body := get(t, srv.URL+"/joke", "PAYMENT-SIGNATURE", sig)
	var receipt x402.SettleResponse
	raw, err := base64.StdEncoding.DecodeString(resp.Header.Get("Payment-Response"))
	if err == nil {
		err = json.Unmarshal(raw, &receipt)
	}
	if err != nil || resp.StatusCode != http.StatusOK || !receipt.Success {
		t.Fatalf("paid GET /joke: %d %+v %v %s", resp.StatusCode, receipt, err, body)
	}
	if !strings.Contains(body, "paid with x402") {
		t.Errorf("body %q", body)
	}

	for i, want := range []string{"99 left", "98 left"} {
		resp, body = get(t, srv.URL+"/joke", "Authorization", "Bearer sk_test_paid")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("key request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body = get(t, srv.URL+"/joke", "Authorization", "Bearer sk_test_broke")
	if resp.StatusCode != http.StatusPaymentRequired || !strings.Contains(body, "insufficient_credits") || resp.Header.Get("Payment-Required") == "" {
		t.Errorf("broke key: %d %s", resp.StatusCode, body)
	}
	resp, _ = get(t, srv.URL+"/stream", "Authorization", "Bearer sk_test_paid")
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Errorf("/stream is x402 only, a key got %d", resp.StatusCode)
	}
}

// TestStreamIsNotBuffered reads the first event of /stream while the
// handler is still waiting to send the second.
func TestStreamIsNotBuffered(t *testing.T) {
	streamInterval = time.Hour
	t.Cleanup(func() { streamInterval = 200 * time.Millisecond })
	srv := newTestServer(t)
	challenge, _ := get(t, srv.URL+"/stream")
	sig := sign(t, srv.URL, challenge)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/stream", nil)
	req.Header.Set("PAYMENT-SIGNATURE", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Payment-Response") == "" {
		t.Fatalf("status %d, PAYMENT-RESPONSE %q", resp.StatusCode, resp.Header.Get("Payment-Response"))
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: Why do Go programmers") {
		t.Fatalf("first event: %q, %v", line, err)
	}
}
