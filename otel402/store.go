package otel402

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/go402/go402/store"
)

// operation is a store method, the go402.store.operation attribute.
type operation int

const (
	opLookup operation = iota
	opSpend
	opRefund
	opTakeTokens
	opSpendWithTokens
	opAccount
	opPutAccount
	opUpdateAccount
	opAccounts
	opTopUp
	opCreateKey
	opPutKey
	opKeys
	opRevokeKey
	opTouchKeys
	opEntries
	opCreateAccount
	opHold
	opSettle
	opHoldWithTokens
	opAcquireSlot
	opReleaseSlot
	numOperations
)

var operationNames = [numOperations]string{
	"lookup", "spend", "refund", "take_tokens", "spend_with_tokens",
	"account", "put_account", "update_account", "accounts", "top_up",
	"create_key", "put_key", "keys", "revoke_key", "touch_keys", "entries",
	"create_account", "hold", "settle", "hold_with_tokens", "acquire_slot",
	"release_slot",
}

// errorType is the error.type of a failed store call.
type errorType int

const (
	errNone errorType = iota
	errNotFound
	errExists
	errInvalidAmount
	errCanceled
	errDeadline
	errOther
	numErrorTypes
)

var errorTypeNames = [numErrorTypes]string{"", "not_found", "exists", "invalid_amount", "canceled", "deadline_exceeded", otherValue}

// failure reports whether an error of type et is a failure: not an
// unknown key or account, nor an account that exists, which are answers.
func (et errorType) failure() bool {
	return et != errNone && et != errNotFound && et != errExists
}

// classify returns the error type of err.
func classify(err error) errorType {
	switch {
	case err == nil:
		return errNone
	case errors.Is(err, store.ErrNotFound):
		return errNotFound
	case errors.Is(err, store.ErrExists):
		return errExists
	case errors.Is(err, store.ErrInvalidAmount):
		return errInvalidAmount
	case errors.Is(err, context.Canceled):
		return errCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return errDeadline
	}
	return errOther
}

// operationAttrs are the options of one operation's measurements, by
// error type.
type operationAttrs struct {
	span     [numErrorTypes][]attribute.KeyValue // of the call's span
	spanName string
	record   [numErrorTypes][]metric.RecordOption
	add      [numErrorTypes][]metric.AddOption
}

// operationTable makes the options of every operation and error type.
func operationTable() (t [numOperations]operationAttrs) {
	for op := range t {
		t[op].spanName = "go402.store." + operationNames[op]
		for et := range errorType(numErrorTypes) {
			kv := []attribute.KeyValue{keyOperation.String(operationNames[op])}
			if et != errNone {
				kv = append(kv, keyErrorType.String(errorTypeNames[et]))
			}
			set := attribute.NewSet(kv...)
			t[op].span[et] = kv
			t[op].record[et] = []metric.RecordOption{metric.WithAttributeSet(set)}
			t[op].add[et] = []metric.AddOption{metric.WithAttributeSet(set)}
		}
	}
	return t
}

// Store returns s wrapped so that every call is timed and its failures
// counted. The result implements exactly the optional capabilities s
// implements (store.Refunder, store.Buckets, store.BucketSpender,
// store.Admin, store.Ledger, store.Holder, store.BucketHolder,
// store.Slots, store.SpendCapper) and is a pointer, so that the paywall
// and a limiter given the same wrapped value recognise it as one store
// and take tokens and credits in one operation. Wrap once, and give that
// value to both. Store panics if s is nil.
func (m *Metrics) Store(s store.Store) store.Store {
	if s == nil {
		panic("otel402: Store: nil store")
	}
	c := &instrumented{m: m, s: s}
	return wrappers[c.probe(s)](c)
}

// instrumented is the store behind every wrapper: s and its capabilities.
type instrumented struct {
	m            *Metrics
	s            store.Store
	refunder     store.Refunder
	buckets      store.Buckets
	spender      store.BucketSpender
	admin        store.Admin
	ledger       store.Ledger
	holder       store.Holder
	bucketHolder store.BucketHolder
	slots        store.Slots
	capper       store.SpendCapper
}

// done records a call of op that started at start and returned err.
func (c *instrumented) done(ctx context.Context, op operation, start time.Time, err error) {
	m := c.m
	et := classify(err)
	a := &m.ops[op]
	end := m.now()
	m.storeTime.Record(ctx, end.Sub(start).Seconds(), a.record[et]...)
	if et.failure() {
		m.storeFails.Add(ctx, 1, a.add[et]...)
	}
	if m.tracer != nil {
		m.traceStore(ctx, a, et, err, interval{start, end})
	}
}

// core is the method set of every wrapper: that of a store.Store, and
// Unwrap.
type core struct{ c *instrumented }

// Unwrap returns the wrapped store.
func (x *core) Unwrap() store.Store { return x.c.s }

// Lookup implements store.Store.
func (x *core) Lookup(ctx context.Context, digest store.Digest) (store.Key, store.Account, error) {
	start := x.c.m.now()
	k, a, err := x.c.s.Lookup(ctx, digest)
	x.c.done(ctx, opLookup, start, err)
	return k, a, err
}

// Spend implements store.Store.
func (x *core) Spend(ctx context.Context, accountID string, cost int64) (store.SpendResult, error) {
	start := x.c.m.now()
	res, err := x.c.s.Spend(ctx, accountID, cost)
	x.c.done(ctx, opSpend, start, err)
	return res, err
}
