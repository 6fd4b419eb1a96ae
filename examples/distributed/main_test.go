package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// replicas starts two replicas on the Redis at REDIS_ADDR (default
// 127.0.0.1:6379) under a fresh key prefix, seeds the demo account, and
// returns their URLs. Without Redis it skips, or fails when CI is set.
func replicas(t *testing.T) [2]string {
	t.Helper()
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	admin := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { admin.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := admin.Ping(ctx).Err(); err != nil {
		msg := "no Redis at " + addr + " (set REDIS_ADDR): " + err.Error()
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	b := make([]byte, 6)
	rand.Read(b)
	prefix := "go402test:distributed:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		keys, _ := admin.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			admin.Del(context.Background(), keys...)
		}
	})
	var urls [2]string
	for i := range urls {
		r, err := newReplica([]string{addr}, prefix, config{timeout: 5 * time.Second}) // generous: -race on two cores
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		if i == 0 {
			if err := seed(context.Background(), r.store); err != nil {
				t.Fatal(err)
			}
		}
		srv := httptest.NewServer(r.handler)
		t.Cleanup(srv.Close)
		urls[i] = srv.URL
	}
	return urls
}

// get sends GET /work with the demo key and returns the status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	return getPath(t, url, "/work")
}

// getPath sends GET path with the demo key and returns the status and body.
func getPath(t *testing.T, url, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url+path, nil)
	req.Header.Set("Authorization", "Bearer "+demoKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// TestAlternatingReplicasAdmitOneBudget sends 150 requests alternating
// between the two replicas: exactly 100 pass, each replica seeing the
// balance the other left, and the rest are refused with 402.
func TestAlternatingReplicasAdmitOneBudget(t *testing.T) {
	urls := replicas(t)
	admitted, refused := 0, 0
	for i := 0; i < 150; i++ {
		status, body := get(t, urls[i%2])
		switch status {
		case http.StatusOK:
			admitted++
			if want := "done; " + strconv.Itoa(demoCredits-admitted) + " credits left\n"; body != want {
				t.Errorf("request %d: body %q, want %q", i, body, want)
			}
		case http.StatusPaymentRequired:
			refused++
			if !strings.Contains(body, "insufficient_credits") {
				t.Errorf("request %d: 402 body %q lacks insufficient_credits", i, body)
			}
		default:
			t.Fatalf("request %d: status %d: %s", i, status, body)
		}
	}
	t.Logf("admitted %d, refused %d over two replicas", admitted, refused)
	if admitted != demoCredits || refused != 50 {
		t.Errorf("admitted %d, refused %d; want %d and 50", admitted, refused, demoCredits)
	}
}

// TestConcurrentReplicasAdmitOneBudget sends 300 requests from 32
// concurrent clients, half of them on each replica: exactly 100 pass.
func TestConcurrentReplicasAdmitOneBudget(t *testing.T) {
	urls := replicas(t)
	var sent, admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sent.Add(1) <= 300 {
				switch status, body := get(t, urls[w%2]); status {
				case http.StatusOK:
					admitted.Add(1)
				case http.StatusPaymentRequired:
					refused.Add(1)
				default:
					t.Errorf("status %d: %s", status, body)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("admitted %d, refused %d over two replicas", admitted.Load(), refused.Load())
	if admitted.Load() != demoCredits || refused.Load() != 200 {
		t.Errorf("admitted %d, refused %d; want %d and 200", admitted.Load(), refused.Load(), demoCredits)
	}
}

// TestReplicasShareRateLimit sends 20 requests to the rate-limited route,
// alternating between the replicas as fast as they answer: together they
// admit the burst of 5 and at most the one or two tokens gained meanwhile,
// not a burst each.
func TestReplicasShareRateLimit(t *testing.T) {
	urls := replicas(t)
	start := time.Now()
	admitted, limited := 0, 0
	for i := 0; i < 20; i++ {
		switch status, body := getPath(t, urls[i%2], "/limited"); status {
		case http.StatusOK:
			admitted++
		case http.StatusTooManyRequests:
			limited++
		default:
			t.Fatalf("request %d: status %d: %s", i, status, body)
		}
	}
	elapsed := time.Since(start).Seconds()
	max := limitBurst + int(limitRate*elapsed) + 1
	t.Logf("admitted %d, limited %d in %.3fs over two replicas (at most %d)", admitted, limited, elapsed, max)
	if admitted < limitBurst || admitted > max {
		t.Errorf("admitted %d, want %d to %d", admitted, limitBurst, max)
	}
}

// TestReplicasFuseLimitAndCharge sends requests alternating between the
// replicas to the charged and limited route (/report) and the limited one
// (/limited), which share the account's bucket: together they admit one
// burst (and the tokens gained meanwhile); each admitted /report costs its
// credits and a refused one costs nothing.
func TestReplicasFuseLimitAndCharge(t *testing.T) {
	urls := replicas(t)
	start := time.Now()
	reports, limitedOK, refused := 0, 0, 0
	balance := demoCredits
	for i := 0; i < 12; i++ {
		path := []string{"/report", "/report", "/limited"}[i%3]
		status, body := getPath(t, urls[i%2], path)
		switch {
		case status == http.StatusOK && path == "/report":
			reports++
			balance -= reportCost
			if want := "done; " + strconv.Itoa(balance) + " credits left\n"; body != want {
				t.Errorf("request %d: body %q, want %q", i, body, want)
			}
		case status == http.StatusOK:
			limitedOK++
		case status == http.StatusTooManyRequests:
			refused++
		default:
			t.Fatalf("request %d (%s): status %d: %s", i, path, status, body)
		}
	}
	elapsed := time.Since(start).Seconds()
	max := limitBurst + int(limitRate*elapsed) + 1
	t.Logf("admitted %d /report and %d /limited, refused %d, in %.3fs (at most %d)", reports, limitedOK, refused, elapsed, max)
	if n := reports + limitedOK; n < limitBurst || n > max {
		t.Errorf("admitted %d, want %d to %d: one bucket for both routes and both replicas", n, limitBurst, max)
	}
	// The balance is what the admitted reports cost, and no more: /work
	// costs 1 and says what is left.
	if status, body := get(t, urls[0]); status != http.StatusOK || body != "done; "+strconv.Itoa(balance-costPerCall)+" credits left\n" {
		t.Errorf("after the reports: %d %q, want %d credits left", status, body, balance-costPerCall)
	}
}
