package pgstore

import (
	"testing"
	"time"

	"github.com/go402/go402/store/storetest"
)

func TestConformance(t *testing.T) {
	pool, other := newPool(t, nil), newPool(t, nil)
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		schema := newSchema(t, pool)
		clock := new(storetest.Clock)
		advance := setClock(t, pool, schema, clock.Now())
		s := newStore(t, pool, Options{Schema: schema, Clock: clock.Now})
		return storetest.Harness{
			Store: s,
			Other: newStore(t, other, Options{Schema: schema, Clock: clock.Now}),
			Now:   clock.Now,
			Advance: func(d time.Duration) {
				advance(d)
				clock.Advance(d)
			},
		}
	})
}

// TestConformanceServerClock runs the suite on the database server's own
// clock, as in production.
func TestConformanceServerClock(t *testing.T) {
	pool, other := newPool(t, nil), newPool(t, nil)
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		schema := newSchema(t, pool)
		return storetest.Harness{Store: newStore(t, pool, Options{Schema: schema}),
			Other: newStore(t, other, Options{Schema: schema})}
	})
}
