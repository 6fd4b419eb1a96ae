package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// This file holds the test helpers: the shared Redis at REDIS_ADDR, test-owned
// redis-server processes, and a test-owned three-node Redis Cluster.

// testTimeout is the store timeout of tests that are not about timeouts:
// generous, because 200 goroutines under -race queue for connections.
const testTimeout = 5 * time.Second

// runPrefix starts the prefix of every key the tests of this process put
// in the shared Redis, so that TestMain can check that none is left.
var runPrefix = "go402test:" + randomHex(4) + ":"

func TestMain(m *testing.M) {
	code := m.Run()
	shutdownCluster()
	if left := leftKeys(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: the tests left %d keys in the shared Redis at %s: %q\n", len(left), redisAddr(), left)
		code = 1
	}
	os.Exit(code)
}

// leftKeys returns the keys under runPrefix in the shared Redis (none if
// it is not running).
func leftKeys() []string {
	c := redis.NewClient(&redis.Options{Addr: redisAddr()})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var left []string
	iter := c.Scan(ctx, 0, runPrefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		left = append(left, iter.Val())
	}
	return left
}

// unavailable fails the test under CI (env CI non-empty) and skips it
// elsewhere, for a missing Redis or redis-server.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg + " (skipped; under CI, with CI set, this fails)")
}

// redisAddr is the address of the shared Redis the tests use.
func redisAddr() string {
	if a := os.Getenv("REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// newClient returns a client of the shared Redis at REDIS_ADDR (default
// 127.0.0.1:6379), closed when the test ends.
func newClient(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: redisAddr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		unavailable(t, "no Redis at %s (set REDIS_ADDR): %v", redisAddr(), err)
	}
	return c
}

// randomHex returns n random bytes in hexadecimal.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// testPrefix returns a prefix no other test uses and deletes every key
// under it when the test ends.
func testPrefix(t testing.TB, c redis.UniversalClient) string {
	t.Helper()
	prefix := runPrefix + randomHex(6) + ":"
	t.Cleanup(func() { deletePrefix(c, prefix) })
	return prefix
}

func deletePrefix(c redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	del := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		return iter.Err()
	}
	if cc, ok := c.(*redis.ClusterClient); ok {
		cc.ForEachMaster(ctx, del)
		return
	}
	del(ctx, c.(*redis.Client))
}

// newTestStore returns a store on c under a fresh prefix, subscribed to
// invalidations. opts may be nil; its Prefix is replaced and a zero Timeout
// becomes testTimeout.
func newTestStore(t testing.TB, c redis.UniversalClient, opts *Options) *Store {
	t.Helper()
	var o Options
	if opts != nil {
		o = *opts
	}
	o.Prefix = testPrefix(t, c)
	if o.Timeout == 0 {
		o.Timeout = testTimeout
	}
	s := mustNew(t, c, &o)
	waitLive(t, s) // subscribing empties the cache: let it happen now
	return s
}

// mustNew returns New(c, opts), closed when the test ends.
func mustNew(t testing.TB, c redis.UniversalClient, opts *Options) *Store {
	t.Helper()
	s, err := New(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// redisServerPath returns the path of redis-server, or skips (fails under
// CI) if it is not installed.
func redisServerPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		unavailable(t, "redis-server not installed: %v", err)
	}
	return p
}

// freePort returns a TCP port on loopback that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// server is a test-owned redis-server process.
type server struct {
	port int
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

func (s *server) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// startServer starts a redis-server on a free loopback port, with no
// persistence and the extra args, and waits until it answers. It is killed
// when the test ends (cleanup may be nil for servers that outlive a test).
func startServer(t testing.TB, cleanup func(func()), extra ...string) *server {
	t.Helper()
	path := redisServerPath(t)
	s := &server{port: freePort(t)}
	s.args = append([]string{"--port", fmt.Sprint(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no"}, extra...)
	if err := s.start(path); err != nil {
		t.Fatal(err)
	}
	if cleanup != nil {
		cleanup(s.kill)
	}
	return s
}

func (s *server) start(path string) error {
	s.cmd = exec.Command(path, s.args...)
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		cmd.Wait()
		close(done)
	}(s.cmd, s.done)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", s.addr(), 100*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.kill()
	return fmt.Errorf("redis-server on %s did not start", s.addr())
}

// restart starts the server again on the same port.
func (s *server) restart(t testing.TB) {
	t.Helper()
	if err := s.start(redisServerPath(t)); err != nil {
		t.Fatal(err)
	}
}

// kill stops the server at once and waits for it to exit.
func (s *server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
}

// The test-owned cluster is started once, by the first test that needs it,
// and shut down by TestMain.
var (
	clusterOnce    sync.Once
	clusterServers []*server
	clusterErr     error
	clusterDir     string
)

// newClusterClient returns a client of a three-node Redis Cluster (no
// replicas) running on loopback, started on first use.
func newClusterClient(t testing.TB) *redis.ClusterClient {
	t.Helper()
	redisServerPath(t)
	if _, err := exec.LookPath("redis-cli"); err != nil {
		unavailable(t, "redis-cli not installed: %v", err)
	}
	clusterOnce.Do(func() { clusterErr = startCluster(t) })
	if clusterErr != nil {
		t.Fatalf("start cluster: %v", clusterErr)
	}
	addrs := make([]string, len(clusterServers))
	for i, s := range clusterServers {
		addrs[i] = s.addr()
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

func startCluster(t testing.TB) error {
	var err error
	clusterDir, err = os.MkdirTemp("", "go402-cluster-")
	if err != nil {
		return err
	}
	args := []string{"--cluster", "create"}
	for i := 0; i < 3; i++ {
		s := startServer(t, nil, "--cluster-enabled", "yes",
			"--cluster-config-file", fmt.Sprintf("%s/nodes-%d.conf", clusterDir, i),
			"--dir", clusterDir)
		clusterServers = append(clusterServers, s)
		args = append(args, s.addr())
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range clusterServers {
		c := redis.NewClient(&redis.Options{Addr: s.addr()})
		for {
			info, err := c.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				c.Close()
				return fmt.Errorf("cluster node %s not ok: %v %s", s.addr(), err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		c.Close()
	}
	return nil
}

func shutdownCluster() {
	for _, s := range clusterServers {
		s.kill()
	}
	if clusterDir != "" {
		os.RemoveAll(clusterDir)
	}
}

// nodeOf returns the address of the cluster node that serves key.
func nodeOf(t testing.TB, c *redis.ClusterClient, key string) string {
	t.Helper()
	n, err := c.MasterForKey(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return n.Options().Addr
}

// spreadAccounts returns n account IDs per cluster node (three nodes), so
// that a test touches every node.
func spreadAccounts(t testing.TB, c *redis.ClusterClient, s *Store, n int) []string {
	t.Helper()
	per := map[string]int{}
	var ids []string
	for i := 0; len(ids) < 3*n; i++ {
		if i > 10000 {
			t.Fatalf("could not spread accounts over the nodes: %v", per)
		}
		id := fmt.Sprintf("spread-%d", i)
		node := nodeOf(t, c, s.AccountRedisKey(id))
		if per[node] < n {
			per[node]++
			ids = append(ids, id)
		}
	}
	if len(per) != 3 {
		t.Fatalf("accounts on %d nodes, want 3", len(per))
	}
	return ids
}
