// Command distributed runs two replicas of one paid API on two ports, both
// on one Redis through the Redis store, to show that together they admit
// exactly one budget: an account with 100 credits gets 100 requests at cost
// 1, however the requests are spread over the replicas. A second route is
// rate limited per account (burst 5, one more a second), with the token
// bucket in Redis, so the replicas share that limit too. A third is both
// charged (5 credits) and limited by the same bucket, and decides both in
// one Redis round trip.
//
//	go run . -redis 127.0.0.1:6379              # replicas on :8081 and :8082
//	curl -H 'Authorization: Bearer sk_test_distributed' localhost:8081/work
//	curl -H 'Authorization: Bearer sk_test_distributed' localhost:8082/work
//	curl -i -H 'Authorization: Bearer sk_test_distributed' localhost:8082/limited
//	curl -i -H 'Authorization: Bearer sk_test_distributed' localhost:8081/report
//
// Each replica has its own Redis client and store, as two processes would;
// the one process serving both is only for convenience. At start-up it
// seeds the account (replacing any earlier balance) under the key prefix
// "go402:example:".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go402/go402/limiter"
	"github.com/go402/go402/paywall"
	"github.com/go402/go402/store"
	"github.com/go402/go402/store/redisstore"
	"github.com/redis/go-redis/v9"
)

// The demo account and key seeded at start-up.
const (
	demoKey     = "sk_test_distributed"
	demoAccount = "distributed-demo"
	demoCredits = 100
	costPerCall = 1
	demoPrefix  = "go402:example:"

	// The limit of GET /limited and GET /report, per account, shared by
	// the replicas and by the two routes.
	limitRate  = 1.0
	limitBurst = 5
	// The cost of GET /report.
	reportCost = 5
)

func main() {
	redisAddr := flag.String("redis", "127.0.0.1:6379", "Redis address (several, comma-separated, for a Cluster)")
	addrs := flag.String("addrs", "localhost:8081,localhost:8082", "listen addresses of the replicas, comma-separated")
	timeout := flag.Duration("timeout", redisstore.DefaultTimeout, "bound on every Redis call; beyond it a request gets 503")
	failOpen := flag.Bool("fail-open", false, "when Redis fails, serve /work and /report free and limit /limited and /report per replica, instead of 503")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, strings.Split(*redisAddr, ","), strings.Split(*addrs, ","), config{timeout: *timeout, failOpen: *failOpen}); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, redisAddrs, listen []string, cfg config) error {
	var servers []*http.Server
	for i, addr := range listen {
		r, err := newReplica(redisAddrs, demoPrefix, cfg)
		if err != nil {
			return err
		}
		defer r.Close()
		if i == 0 {
			if err := seed(ctx, r.store); err != nil {
				return fmt.Errorf("seed: %w", err)
			}
		}
		srv := &http.Server{Addr: addr, Handler: r.handler, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Printf("replica %d: %v", i+1, err)
			}
		}()
		fmt.Printf("replica %d on http://%s/work\n", i+1, addr)
	}
	fmt.Printf("key %s: %d credits, %d per request, shared by all replicas\n", demoKey, demoCredits, costPerCall)
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		srv.Shutdown(shutdown)
	}
	return nil
}

// replica is one instance of the service: its own Redis client, store and
// middlewares, sharing nothing in-process with the others.
type replica struct {
	client  redis.UniversalClient
	store   *redisstore.Store
	handler http.Handler
}

// Close stops the store's background work, then closes the client.
func (r *replica) Close() error {
	r.store.Close()
	return r.client.Close()
}

// config is what the flags set.
type config struct {
	timeout  time.Duration // bound on each Redis call; 0 means the default
	failOpen bool          // serve without Redis instead of answering 503
}

// newReplica builds a replica on the Redis at addrs, under the key prefix.
func newReplica(addrs []string, prefix string, cfg config) (*replica, error) {
	client := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 addrs,
		ContextTimeoutEnabled: true, // lets the store's timeout bound every call
	})
	s, err := redisstore.New(client, &redisstore.Options{Prefix: prefix, Timeout: cfg.timeout})
	if err != nil {
		client.Close()
		return nil, err
	}
	pw, err := paywall.New(s, &paywall.Options{FailOpen: cfg.failOpen})
	if err != nil {
		client.Close()
		return nil, err
	}
	// Keyed by account, the limiter takes from each account's own bucket
	// in Redis, which lives beside the account (in its Cluster hash slot).
	lim, err := limiter.New(limitRate, limitBurst, &limiter.Options{
		By: limiter.ByAccount(), Store: s, FailOpen: cfg.failOpen,
	})
	if err != nil {
		client.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /work", pw.Authenticate(pw.Charge(costPerCall)(http.HandlerFunc(work))))
	mux.Handle("GET /limited", pw.Authenticate(lim.Handler(http.HandlerFunc(limited))))
	// Charged and limited: the limiter in front of the charge, with its
	// buckets in the same store, so that the tokens and the credits are
	// taken in one Redis script — one round trip, nothing taken if either
	// refuses.
	mux.Handle("GET /report", pw.Authenticate(lim.Handler(pw.Charge(reportCost)(http.HandlerFunc(work)))))
	return &replica{client: client, store: s, handler: mux}, nil
}

// work is the paid handler: it reports the balance left after its charge.
func work(w http.ResponseWriter, r *http.Request) {
	c, ok := paywall.CallerFromContext(r.Context())
	if !ok || c.Charged == 0 { // Redis failed and FailOpen let the request through
		fmt.Fprintln(w, "done; not charged (store unavailable)")
		return
	}
	fmt.Fprintf(w, "done; %d credits left\n", c.Balance)
}

// limited is the rate-limited handler.
func limited(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintln(w, "within the limit")
}

// seed stores the demo account with a full budget and its key.
func seed(ctx context.Context, s *redisstore.Store) error {
	if err := s.PutAccount(ctx, store.Account{ID: demoAccount, Plan: "demo", Balance: demoCredits}); err != nil {
		return err
	}
	return s.PutKey(ctx, store.NewKey(demoKey, demoAccount))
}
