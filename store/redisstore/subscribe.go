package redisstore

import (
	"context"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/go402/go402/store"
	"github.com/redis/go-redis/v9"
)

// Invalidations travel on the channel Prefix+"invalidate": the sending
// Store's id, a space, then "k" and the hex digest of a key put or revoked,
// or "a" and the ID of an account put. A Store ignores its own: it dropped
// what they name when it made the change, and may have cached it again
// since.

// pingEvery is how often a quiet subscription is checked: a ping that gets
// no answer within another pingEvery counts the subscription as dropped.
const pingEvery = time.Second

// startSubscription starts the goroutine that keeps this process's lookup
// cache in step with the changes made through other Stores.
func (s *Store) startSubscription() {
	ctx, stop := context.WithCancel(context.Background())
	s.subStop = stop
	s.subDone = make(chan struct{})
	go s.subscribe(ctx)
}

// subscribe listens for invalidations until ctx ends. Whenever the
// subscription is (re)established, the whole cache is dropped, since
// invalidations may have been missed while it was down; while it is down,
// cached entries live for their TTL.
func (s *Store) subscribe(ctx context.Context) {
	defer close(s.subDone)
	pause := 10 * time.Millisecond
	for ctx.Err() == nil {
		ps := s.rdb.Subscribe(ctx, s.channel)
		// A read in progress does not watch ctx: closing ps ends it.
		unblock := context.AfterFunc(ctx, func() { ps.Close() })
		if s.listen(ctx, ps) {
			pause = 10 * time.Millisecond
		}
		s.subLive.Store(false)
		if unblock() {
			ps.Close()
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		pause = min(2*pause, time.Second)
	}
}

// listen handles the messages of ps until it fails, and reports whether the
// subscription was established.
func (s *Store) listen(ctx context.Context, ps *redis.PubSub) bool {
	live, pinged := false, false
	for {
		msg, err := ps.ReceiveTimeout(ctx, pingEvery)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return live
		case isTimeout(err) && !pinged:
			pinged = ps.Ping(ctx) == nil
			if pinged {
				continue
			}
			return live
		default:
			return live
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == s.channel {
				live = true
				s.cache.flush()
				s.subLive.Store(true)
				s.subCount.Add(1)
			}
		case *redis.Message:
			s.invalidate(m.Payload)
		}
	}
}

// invalidate drops what the message payload names from the cache.
func (s *Store) invalidate(payload string) {
	origin, payload, ok := strings.Cut(payload, " ")
	if !ok || origin == s.ops.base || len(payload) < 1 {
		return
	}
	switch payload[0] {
	case 'k':
		var d store.Digest
		if n, err := hex.Decode(d[:], []byte(payload[1:])); err == nil && n == len(d) {
			s.cache.drop(d)
			return
		}
		s.cache.flush()
	case 'a':
		s.cache.dropAccount(payload[1:])
	}
}

// announce publishes an invalidation to every Store on the same Redis and
// prefix. A failure is not returned: the change is made, and the other
// replicas see it within their LookupTTL.
func (s *Store) announce(ctx context.Context, payload string) {
	ctx, cancel := s.withTimeout(context.WithoutCancel(ctx))
	defer cancel()
	s.rdb.Publish(ctx, s.channel, s.ops.base+" "+payload)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
