package limiter

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/go402/go402/store"
)

// policy is one rate and burst — the main window — and the policy's other
// windows, with its header values, computed once and shared by every
// response (no spare capacity: an append copies).
type policy struct {
	limit      store.RateLimit
	set        *windowSet // the other windows; nil if none
	header     []string   // RateLimit-Policy
	limitValue []string   // X-RateLimit-Limit

	// full is the RateLimit value of the main window (r=fullR, t=fullT)
	// after a fixed-cost take from a full bucket, as a client under its
	// limit makes; nil if cost > burst.
	full  []string
	fullR int
	fullT int64
}

// newPolicy returns the policy named quoted of lim and the windows of set
// (nil for none), for requests of cost.
func newPolicy(quoted string, lim store.RateLimit, cost int, set *windowSet) *policy {
	p := &policy{
		limit:      lim,
		set:        set,
		header:     []string{quoted + ";q=" + strconv.Itoa(lim.Burst) + ";w=" + strconv.FormatInt(window(lim), 10) + set.policyItems()},
		limitValue: []string{strconv.Itoa(lim.Burst)},
	}
	if cost <= lim.Burst {
		res := Result{Cost: cost}
		res.fill(true, float64(lim.Burst-cost), p)
		p.fullR, p.fullT = res.Remaining, seconds(res.Reset)
		p.full = []string{string(appendRateLimit(nil, quoted+";r=", p.fullR, p.fullT))}
	}
	return p
}

// isFull reports whether r and t are the main window's after a take from
// a full bucket, whose RateLimit value is p.full.
func (p *policy) isFull(r int, t int64) bool {
	return r == p.fullR && t == p.fullT && p.full != nil
}

// maxOverridePolicies is the most policies of overrides that policies keeps.
const maxOverridePolicies = 1024

// policies are a Limiter's configured policies — the default's and the
// plans' — by plan name and by rate and burst (the default's where a plan
// has the same), and the policies of per-account overrides: about ten
// allocations to build, so kept once made, up to maxOverridePolicies, and
// made anew for each request beyond.
type policies struct {
	def     *policy
	byPlan  policyIndex[string]
	byLimit policyIndex[policyKey]
	// quoted and cost make the policy of a limit that is not configured.
	quoted     string
	cost       int
	overrides  sync.Map // policyKey → *policy
	nOverrides atomic.Int32
}

// policyKey identifies a policy: its main window and its other windows.
type policyKey struct {
	lim store.RateLimit
	set *windowSet
}

// ofLimit returns the policy of lim alone.
func (ps *policies) ofLimit(lim store.RateLimit) *policy { return ps.of(lim, nil) }

// of returns the policy of lim and the windows of set: a configured one,
// or for an override's the one made for it before, or a new one.
func (ps *policies) of(lim store.RateLimit, set *windowSet) *policy {
	k := policyKey{lim, set}
	if p := ps.byLimit.get(k); p != nil {
		return p
	}
	if p, ok := ps.overrides.Load(k); ok {
		return p.(*policy)
	}
	p := newPolicy(ps.quoted, lim, ps.cost, set)
	if ps.nOverrides.Load() >= maxOverridePolicies || (set != nil && set.perAccount) {
		return p
	}
	kept, loaded := ps.overrides.LoadOrStore(k, p)
	if !loaded {
		ps.nOverrides.Add(1)
	}
	return kept.(*policy)
}

// maxScanned is the most policies a policyIndex finds by comparing each in
// turn, which beats a map's hashing for a few (1–10 ns against 10–35 ns).
const maxScanned = 8

// policyIndex finds policies by a key: a plan's name, or a rate and burst.
type policyIndex[K comparable] struct {
	keys []K
	pols []*policy
	m    map[K]*policy // instead of keys and pols, beyond maxScanned
}

// newPolicyIndex returns the index of m.
func newPolicyIndex[K comparable](m map[K]*policy) policyIndex[K] {
	if len(m) > maxScanned {
		return policyIndex[K]{m: m}
	}
	var x policyIndex[K]
	for k, p := range m {
		x.keys, x.pols = append(x.keys, k), append(x.pols, p)
	}
	return x
}

// get returns the policy of k, or nil.
func (x *policyIndex[K]) get(k K) *policy {
	if x.m != nil {
		return x.m[k]
	}
	for i := range x.keys {
		if x.keys[i] == k {
			return x.pols[i]
		}
	}
	return nil
}
