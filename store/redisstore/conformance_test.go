package redisstore

import (
	"testing"

	"github.com/go402/go402/store/storetest"
	"github.com/redis/go-redis/v9"
)

// runConformance runs the store conformance suite on stores using client c,
// twice: with the Redis server's clock (the production path; subtests that
// need to move the clock skip) and with a fake clock passed to the scripts,
// so that refills exactly at period boundaries and expiring keys are
// checked too.
func runConformance(t *testing.T, c redis.UniversalClient) {
	t.Run("ServerClock", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) storetest.Harness {
			s := newTestStore(t, c, nil)
			return storetest.Harness{Store: s, Other: otherStore(t, c, s, nil)}
		})
	})
	t.Run("FakeClock", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) storetest.Harness {
			clock := new(storetest.Clock)
			s := newTestStore(t, c, &Options{Clock: clock.Now})
			s.scriptClock = clock.Now
			o := otherStore(t, c, s, &Options{Clock: clock.Now})
			o.scriptClock = clock.Now
			return storetest.Harness{Store: s, Other: o, Now: clock.Now, Advance: clock.Advance}
		})
	})
}

// otherStore returns a second Store (cache, subscription) on the data of
// s, on the same client, like another replica.
func otherStore(t *testing.T, c redis.UniversalClient, s *Store, opts *Options) *Store {
	t.Helper()
	var o Options
	if opts != nil {
		o = *opts
	}
	o.Prefix, o.Timeout = s.prefix, testTimeout
	return mustNew(t, c, &o)
}

func TestConformance(t *testing.T) {
	runConformance(t, newClient(t))
}

func TestConformanceCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	runConformance(t, newClusterClient(t))
}
