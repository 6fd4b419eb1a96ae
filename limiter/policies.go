package limiter

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/go402/go402/store"
)

// policy is one rate and burst with its header values, computed once. The
// header slices have no spare capacity and are shared by every response
// that uses the policy: appending to them copies, and nothing writes into
// them.
type policy struct {
	limit      store.RateLimit
	header     []string // RateLimit-Policy
	limitValue []string // X-RateLimit-Limit

	// full is the RateLimit value after a request of the limiter's fixed
	// cost took its tokens from a full bucket: r=fullR, t=fullT. A client
	// under its limit finds its bucket full at every request, so this is
	// the common answer, and it costs no allocation. Nil if the cost
	// exceeds the burst.
	full  []string
	fullR int
	fullT int64
}

// newPolicy returns the policy for lim named by quoted, for requests that
// cost cost tokens.
func newPolicy(quoted string, lim store.RateLimit, cost int) *policy {
	b := make([]byte, 0, len(quoted)+32)
	b = append(b, quoted...)
	b = append(b, ";q="...)
	b = strconv.AppendInt(b, int64(lim.Burst), 10)
	b = append(b, ";w="...)
	b = strconv.AppendInt(b, window(lim), 10)
	p := &policy{
		limit:      lim,
		header:     []string{string(b)},
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

// maxScannedPolicies is the most configured policies that policies finds by
// comparing each in turn rather than by a map lookup.
const maxScannedPolicies = 8

// maxOverridePolicies is the most policies of limits that are not
// configured (per-account overrides) that policies keeps for reuse.
const maxOverridePolicies = 1024

// policies are a Limiter's configured policies — the default's and those of
// [Options.Plans] — found by a plan's name (an account's plan) or by a rate
// and burst (a bucket's, which may be a per-account override's). Both
// lookups run on every request keyed by account, so a few policies are
// found by comparing each in turn, faster than a map lookup's hashing; more
// than maxScannedPolicies, in maps. The policies of other limits, which
// take about ten allocations to build, are kept once made, up to
// maxOverridePolicies of them, and made anew for each request beyond.
type policies struct {
	def *policy
	// The plans' policies by name, and every configured policy by its
	// limit (the default's where a plan has the same limit: the two are
	// alike, one name and one cost). The slices are used when there are
	// few, the maps otherwise.
	plans   []namedPolicy
	limits  []*policy
	byPlan  map[string]*policy
	byLimit map[store.RateLimit]*policy
	// quoted and cost make the policy of a limit that is not configured.
	quoted string
	cost   int
	// overrides maps the limits that are not configured to the policies
	// made for them; nOverrides counts them.
	overrides  sync.Map
	nOverrides atomic.Int32
}

// namedPolicy is a plan's name and policy.
type namedPolicy struct {
	name string
	pol  *policy
}

// newPolicies returns the policies def and plans (by plan name), which are
// named quoted and cost cost tokens per request.
func newPolicies(def *policy, plans map[string]*policy, quoted string, cost int) *policies {
	ps := &policies{def: def, quoted: quoted, cost: cost}
	byLimit := make(map[store.RateLimit]*policy, len(plans)+1)
	for _, p := range plans {
		byLimit[p.limit] = p
	}
	byLimit[def.limit] = def
	if len(plans) >= maxScannedPolicies {
		ps.byPlan, ps.byLimit = plans, byLimit
		return ps
	}
	for name, p := range plans {
		ps.plans = append(ps.plans, namedPolicy{name, p})
	}
	for _, p := range byLimit {
		ps.limits = append(ps.limits, p)
	}
	return ps
}

// ofPlan returns the policy of the plan named name, or nil if it has none.
func (ps *policies) ofPlan(name string) *policy {
	if ps.byPlan != nil {
		return ps.byPlan[name]
	}
	for i := range ps.plans {
		if ps.plans[i].name == name {
			return ps.plans[i].pol
		}
	}
	return nil
}

// ofLimit returns the policy of lim: a configured one, or for a limit that
// is not configured (a per-account override's) the one made for it before,
// or a new one.
func (ps *policies) ofLimit(lim store.RateLimit) *policy {
	if ps.byLimit != nil {
		if p := ps.byLimit[lim]; p != nil {
			return p
		}
	} else {
		for _, p := range ps.limits {
			if p.limit == lim {
				return p
			}
		}
	}
	if p, ok := ps.overrides.Load(lim); ok {
		return p.(*policy)
	}
	p := newPolicy(ps.quoted, lim, ps.cost)
	if ps.nOverrides.Load() >= maxOverridePolicies {
		return p
	}
	kept, loaded := ps.overrides.LoadOrStore(lim, p)
	if !loaded {
		ps.nOverrides.Add(1)
	}
	return kept.(*policy)
}
