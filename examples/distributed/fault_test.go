package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// redisServer is a test-owned redis-server on a free loopback port.
type redisServer struct {
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

func (s *redisServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// startRedis starts a redis-server without persistence on a free port and
// kills it when the test ends. Without redis-server it skips, or fails when
// CI is set.
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server not installed")
		}
		t.Skip("redis-server not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &redisServer{port: l.Addr().(*net.TCPAddr).Port}
	l.Close()
	s.start(t)
	t.Cleanup(s.kill)
	return s
}

func (s *redisServer) start(t *testing.T) {
	t.Helper()
	s.cmd = exec.Command("redis-server", "--port", fmt.Sprint(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no")
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(s.cmd, s.done)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", s.addr(), 100*time.Millisecond); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("redis-server on %s did not start", s.addr())
}

func (s *redisServer) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		<-s.done
	}
}

// TestRedisDown stops Redis under a running replica: fail-closed, both
// routes answer 503 store_unavailable with Retry-After within the store's
// timeout; fail-open, /work is served without charge and /limited falls
// back to the replica's own bucket (burst 5). After Redis restarts (empty:
// no persistence) and the account is seeded again, charging is exact again.
func TestRedisDown(t *testing.T) {
	const timeout = 100 * time.Millisecond
	for _, failOpen := range []bool{false, true} {
		t.Run(fmt.Sprintf("FailOpen=%v", failOpen), func(t *testing.T) {
			srv := startRedis(t)
			r, err := newReplica([]string{srv.addr()}, demoPrefix, config{timeout: timeout, failOpen: failOpen})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			if err := seed(context.Background(), r.store); err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(r.handler)
			t.Cleanup(ts.Close)

			if status, body := get(t, ts.URL); status != http.StatusOK || body != "done; 99 credits left\n" {
				t.Fatalf("healthy: %d %q", status, body)
			}
			srv.kill()

			limitedOK := 0
			for i := 0; i < 10; i++ {
				start := time.Now()
				req, _ := http.NewRequest("GET", ts.URL+[]string{"/work", "/limited"}[i%2], nil)
				req.Header.Set("Authorization", "Bearer "+demoKey)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				body := string(b)
				took := time.Since(start)
				if took > timeout+300*time.Millisecond {
					t.Errorf("down: request %d took %v", i, took)
				}
				switch {
				case !failOpen:
					if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" ||
						!strings.Contains(body, "store_unavailable") {
						t.Errorf("down, fail-closed: %d %q %q", res.StatusCode, res.Header.Get("Retry-After"), body)
					}
				case i%2 == 0:
					if res.StatusCode != http.StatusOK || !strings.Contains(body, "not charged") {
						t.Errorf("down, fail-open /work: %d %q", res.StatusCode, body)
					}
				default:
					switch res.StatusCode {
					case http.StatusOK:
						limitedOK++
					case http.StatusTooManyRequests:
					default:
						t.Errorf("down, fail-open /limited: %d %q", res.StatusCode, body)
					}
				}
			}
			if failOpen && limitedOK != 5 {
				t.Errorf("down, fail-open: /limited admitted %d of 5 requests, want all 5 (the local bucket's burst)", limitedOK)
			}

			srv.start(t)
			if err := seed(context.Background(), r.store); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 3; i++ {
				if status, body := get(t, ts.URL); status != http.StatusOK || body != fmt.Sprintf("done; %d credits left\n", 100-i) {
					t.Fatalf("restarted: %d %q", status, body)
				}
			}
		})
	}
}
