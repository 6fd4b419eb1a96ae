package redisstore

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestTwoReplicasExactSentinel runs the two-replica exactness test through
// Sentinel: a test-owned primary and a Sentinel monitoring it, and two
// failover clients that find the primary through the Sentinel.
func TestTwoReplicasExactSentinel(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server and a Sentinel")
	}
	primary := startServer(t, t.Cleanup)
	port := freePort(t)
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	config := fmt.Sprintf("port %d\nbind 127.0.0.1\nsentinel monitor go402 127.0.0.1 %d 1\n", port, primary.port)
	if err := os.WriteFile(conf, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	sentinel := &server{port: port, args: []string{conf, "--sentinel"}}
	if err := sentinel.start(redisServerPath(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sentinel.kill)

	newFailover := func() *redis.Client {
		c := redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:            "go402",
			SentinelAddrs:         []string{sentinel.addr()},
			ContextTimeoutEnabled: true,
		})
		t.Cleanup(func() { c.Close() })
		return c
	}
	c1, c2 := newFailover(), newFailover()
	s1 := newTestStore(t, c1, nil)
	s2 := mustNew(t, c2, &Options{Prefix: s1.prefix, Timeout: testTimeout})
	testTwoReplicasExact(t, s1, s2, []string{"sentinel-1"})
}
