package pgstore

import (
	"context"
	"encoding/hex"
	"strings"
	"time"

	"github.com/go402/go402/store"
	"github.com/jackc/pgx/v5"
)

// listen keeps a connection of its own LISTENing on the schema's channel
// until ctx ends, applying each notification to the lookup cache. When
// the connection drops it reconnects, with a backoff of up to five
// seconds; cached lookups meanwhile expire after LookupTTL as usual, and
// the cache is emptied once listening again, for what was missed.
func (s *Store) listen(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		if s.listenOnce(ctx) {
			backoff = 50 * time.Millisecond
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// listenOnce connects, listens and applies notifications until the
// connection fails or ctx ends; it reports whether LISTEN succeeded.
func (s *Store) listenOnce(ctx context.Context) bool {
	cctx, cancel := s.bounded(ctx)
	conn, err := pgx.ConnectConfig(cctx, s.pool.Config().ConnConfig)
	if err == nil {
		_, err = conn.Exec(cctx, "LISTEN "+pgx.Identifier{s.schema}.Sanitize())
	}
	cancel()
	if conn != nil {
		defer conn.Close(context.Background())
	}
	if err != nil {
		return false
	}
	s.listener.pid.Store(conn.PgConn().PID())
	s.cache.clear()
	s.listener.live.Store(true)
	s.listener.sessions.Add(1)
	defer s.listener.live.Store(false)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true
		}
		s.invalidate(n.Payload)
	}
}

// invalidate applies one notification: "k:" and a key digest in hex, or
// "a:" and an account ID.
func (s *Store) invalidate(payload string) {
	if id, ok := strings.CutPrefix(payload, "a:"); ok {
		s.cache.invalidateAccount(id)
		return
	}
	var d store.Digest
	h, ok := strings.CutPrefix(payload, "k:")
	if b, err := hex.DecodeString(h); ok && err == nil && len(b) == len(d) {
		copy(d[:], b)
		s.cache.invalidateKey(d)
		return
	}
	s.cache.clear()
}
