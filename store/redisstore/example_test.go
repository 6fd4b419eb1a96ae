package redisstore_test

import (
	"context"
	"fmt"
	"log"

	"github.com/go402/go402/store"
	"github.com/go402/go402/store/redisstore"
	"github.com/redis/go-redis/v9"
)

// Example sets up a store shared by every replica that uses the same Redis,
// with an account of 100 credits and a key for it. It needs a Redis at
// 127.0.0.1:6379, so it is not run as a test; the package's tests run the
// same steps.
func Example() {
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 []string{"127.0.0.1:6379"}, // several addresses: a Cluster
		ContextTimeoutEnabled: true,                       // required: lets Options.Timeout bound calls
	})
	defer rdb.Close()
	s, err := redisstore.New(rdb, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close() // stops the cache subscription and the cancel retries
	ctx := context.Background()
	if err := s.PutAccount(ctx, store.Account{ID: "acme", Plan: "pro", Balance: 100}); err != nil {
		log.Fatal(err)
	}
	raw, _, err := s.CreateKey(ctx, "acme", "sk_live_")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("give the customer", raw) // the only time the raw key exists

	// What the middlewares do per request: a lookup (cached in-process)
	// and one script that takes a token and debits the cost.
	_, acct, err := s.Lookup(ctx, store.DigestOf(raw))
	if err != nil {
		log.Fatal(err)
	}
	bucket := store.Bucket{Account: acct.ID, Key: "default", Rate: 10, Burst: 20, Cost: 1}
	spent, limited, err := s.SpendWithTokens(ctx, acct.ID, 1, bucket)
	if err != nil {
		log.Fatal(err) // Redis down or slow: answer 503
	}
	fmt.Println(limited.OK, spent.OK, spent.Balance)
}

// ExampleStore_AccountRedisKey shows where a store keeps an account (and
// its token buckets, fields of the same hash), a stand-alone token bucket
// and an API key, for inspection with redis-cli. New does not wait for
// Redis, so this runs without one.
func ExampleStore_AccountRedisKey() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer rdb.Close()
	s, err := redisstore.New(rdb, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	fmt.Println(s.AccountRedisKey("acme"))
	fmt.Println(s.BucketRedisKey(store.Bucket{Account: "acme", Key: "default"}))
	fmt.Println(s.BucketRedisKey(store.Bucket{Key: "default:192.0.2.1"}))
	fmt.Println(s.APIKeyRedisKey(store.DigestOf("sk_live_example")))
	// Output:
	// go402:{acct:acme}:account
	// go402:{acct:acme}:account
	// go402:{default:192.0.2.1}:bucket
	// go402:{key:edc0244907453860f53b31a05089a2a9f0fdb349e3610b2ab88a36fd9719d7fa}
}
