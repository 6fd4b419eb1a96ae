package limiter

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/go402/go402/store"
)

// Names of the headers the limiter writes (draft-ietf-httpapi-ratelimit-
// headers-10), in [net/http.Header]'s canonical form, so h[HeaderRateLimit]
// finds them.
const (
	// HeaderRateLimitPolicy describes the policy: `"default";q=20;w=2`.
	HeaderRateLimitPolicy = "Ratelimit-Policy"
	// HeaderRateLimit is the bucket's state: `"default";r=19;t=1`.
	HeaderRateLimit = "Ratelimit"
	// HeaderRateLimitPolicyShadow and HeaderRateLimitShadow are their
	// names in [Options.Shadow] mode.
	HeaderRateLimitPolicyShadow = "Ratelimit-Policy-Shadow"
	HeaderRateLimitShadow       = "Ratelimit-Shadow"
)

// window returns a policy's w: the seconds an empty bucket takes to fill,
// rounded up (so q=Burst over w never overstates the rate), at least 1.
func window(lim store.RateLimit) int64 {
	return int64(min(max(math.Ceil(float64(lim.Burst)/lim.Rate), 1), 1<<53))
}

// quote returns name, printable ASCII, as a Structured Fields String (RFC
// 9651 §3.3.3).
func quote(name string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`
}

// seconds returns d in whole seconds, rounded up; zero or negative d gives 0.
func seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// setHeaders writes RateLimit-Policy and RateLimit describing res into h,
// and the legacy headers if configured.
func (l *Limiter) setHeaders(h http.Header, res *Result) {
	pol := res.policy
	t := seconds(res.Reset)
	if l.opts.Shadow {
		h[HeaderRateLimitPolicyShadow] = pol.header
		h[HeaderRateLimitShadow] = l.rateLimitValue(res, t)
		return
	}
	h[HeaderRateLimitPolicy] = pol.header
	h[HeaderRateLimit] = l.rateLimitValue(res, t)
	if l.opts.LegacyHeaders { // under canonical names too
		h["X-Ratelimit-Limit"] = pol.limitValue
		h["X-Ratelimit-Remaining"] = []string{strconv.Itoa(res.Remaining)}
		h["X-Ratelimit-Reset"] = []string{strconv.FormatInt(t, 10)}
	}
}

// rateLimitValue is the RateLimit value of res, the main window's t given:
// the policy's full value when it is the whole answer, else one item per
// window, cut from the slab of res's scratch.
func (l *Limiter) rateLimitValue(res *Result, t int64) []string {
	pol := res.policy
	full := pol.isFull(res.Remaining, t)
	if full && len(res.Windows) == 0 {
		return pol.full
	}
	need := len(l.rPrefix) + maxParamsLen
	if len(res.Windows) > 0 {
		need += pol.set.valueLen
	}
	s := res.scratchMem().slabWith(need)
	b := s.buf[s.nb:s.nb:len(s.buf)]
	if full {
		b = append(b, pol.full[0]...)
	} else {
		b = appendRateLimit(b, l.rPrefix, res.Remaining, t)
	}
	for i := range res.Windows {
		w := &res.Windows[i]
		b = appendRateLimit(b, pol.set.ws[i].rPrefix, w.Remaining, seconds(w.Reset))
	}
	return s.cut(b)
}

// scratch is a request's working memory, taken from scratches and given
// back when its response's headers are set: the outcomes of its policy's
// other windows, written anew by each request, and the slab its header
// values are cut from.
type scratch struct {
	wins [store.MaxWindows - 1]WindowResult
	slab *valueSlab
}

var scratches = sync.Pool{New: func() any { return new(scratch) }}

// scratchMem returns res's scratch, taken from scratches if it has none.
func (res *Result) scratchMem() *scratch {
	if res.scratch == nil {
		res.scratch = scratches.Get().(*scratch)
	}
	return res.scratch
}

// windowResults returns memory for the n (< store.MaxWindows) outcomes of
// res's other windows, from its scratch.
func (res *Result) windowResults(n int) []WindowResult {
	return res.scratchMem().wins[:n:n]
}

// release gives res's scratch back to scratches, once nothing reads its
// Windows any more: Windows is then nil.
func (res *Result) release() {
	if res.scratch != nil {
		res.Windows = nil
		scratches.Put(res.scratch)
		res.scratch = nil
	}
}

// valueSlab is memory that header values are cut from, front to back: a
// part once cut is never written again, so a value stays valid for as long
// as anything holds it, and one allocation serves many responses.
type valueSlab struct {
	vals [64]string
	buf  [slabBytes]byte
	nv   int // values cut
	nb   int // bytes cut
}

// slabBytes is the size of a valueSlab's bytes: room for the longest
// RateLimit value, whose names are at most 64 bytes and quoted at most
// twice as long, the main window's and MaxWindows − 1 others'.
const slabBytes = 4096

// A compile-time check that the longest RateLimit value fits a slab.
var _ [slabBytes - (2*64 + 5 + maxParamsLen) - (store.MaxWindows-1)*(2*64+7+maxParamsLen)]struct{}

// slabWith returns sc's slab if it has room for a value of up to need
// bytes, else a new one, which the old one's values keep alive.
func (sc *scratch) slabWith(need int) *valueSlab {
	if s := sc.slab; s != nil && s.nv < len(s.vals) && len(s.buf)-s.nb >= need {
		return s
	}
	sc.slab = new(valueSlab)
	return sc.slab
}

// cut returns b, appended to s.buf's free bytes without growing, as a
// one-element header value, and marks its memory used.
func (s *valueSlab) cut(b []byte) []string {
	s.vals[s.nv] = unsafe.String(&b[0], len(b))
	v := s.vals[s.nv : s.nv+1 : s.nv+1]
	s.nv++
	s.nb += len(b)
	return v
}

// maxParamsLen is the longest r and t of a RateLimit value get: two int64s
// and ";t=".
const maxParamsLen = 20 + len(";t=") + 20

// appendRateLimit appends the RateLimit value prefix (`"name";r=`) + `<r>;t=<t>`.
func appendRateLimit(b []byte, prefix string, r int, t int64) []byte {
	b = append(b, prefix...)
	b = strconv.AppendInt(b, int64(r), 10)
	b = append(b, ";t="...)
	return strconv.AppendInt(b, t, 10)
}
