package limiter

import (
	"math"
	"net/http"
	"strconv"
	"strings"
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
// and the legacy headers if configured. RateLimit is the policy's full
// value when it fits, else one allocation (see oneValue).
func (l *Limiter) setHeaders(h http.Header, res *Result) {
	if l.opts.Shadow {
		l.setShadowHeaders(h, res)
		return
	}
	pol := res.policy
	h[HeaderRateLimitPolicy] = pol.header

	t := seconds(res.Reset)
	switch {
	case len(res.Windows) > 0 && pol.set != nil:
		h[HeaderRateLimit] = l.windowsValue(res, t)
	case res.Remaining == pol.fullR && t == pol.fullT && pol.full != nil:
		h[HeaderRateLimit] = pol.full
	case len(l.rPrefix)+maxParamsLen <= len(oneValue{}.buf):
		v := new(oneValue)
		b := appendRateLimit(v.buf[:0], l.rPrefix, res.Remaining, t)
		v.v[0] = unsafe.String(&v.buf[0], len(b))
		h[HeaderRateLimit] = v.v[:]
	default:
		var buf [2*64 + 5 + maxParamsLen]byte // a quoted Name of up to 64 bytes, and ";r="
		h[HeaderRateLimit] = []string{string(appendRateLimit(buf[:0], l.rPrefix, res.Remaining, t))}
	}

	if l.opts.LegacyHeaders { // under canonical names too
		h["X-Ratelimit-Limit"] = pol.limitValue
		h["X-Ratelimit-Remaining"] = []string{strconv.Itoa(res.Remaining)}
		h["X-Ratelimit-Reset"] = []string{strconv.FormatInt(t, 10)}
	}
}

// windowsValue is the RateLimit value of res, a result with other
// windows: one item per window, the main one's t given. It is written in
// res.mem when it fits.
func (l *Limiter) windowsValue(res *Result, t int64) []string {
	set := res.policy.set
	var b []byte
	m := res.mem
	if need := len(l.rPrefix) + len(set.items) + (len(set.ws)+1)*maxParamsLen; m != nil && need <= len(m.buf) {
		b = m.buf[:0]
	} else {
		m = nil
		b = make([]byte, 0, need)
	}
	b = appendRateLimit(b, l.rPrefix, res.Remaining, t)
	for i := range res.Windows {
		w := &res.Windows[i]
		b = appendRateLimit(b, set.ws[i].rPrefix, w.Remaining, seconds(w.Reset))
	}
	v := unsafe.String(&b[0], len(b))
	if m == nil {
		return []string{v}
	}
	m.v[0] = v
	return m.v[:]
}

// windowsMem is a result's window outcomes and its RateLimit value in one
// allocation, for a policy of up to four windows; the value's string
// shares buf, never written again once it is.
type windowsMem struct {
	w   [3]WindowResult
	v   [1]string
	buf [256]byte
}

// windowResults returns n window outcomes for res, in res.mem if they fit.
func (res *Result) windowResults(n int) []WindowResult {
	if n > len(windowsMem{}.w) {
		return make([]WindowResult, n)
	}
	res.mem = new(windowsMem)
	return res.mem.w[:n]
}

// setShadowHeaders writes the headers of res under their shadow names.
func (l *Limiter) setShadowHeaders(h http.Header, res *Result) {
	h[HeaderRateLimitPolicyShadow] = res.policy.header
	t := seconds(res.Reset)
	if len(res.Windows) > 0 && res.policy.set != nil {
		h[HeaderRateLimitShadow] = l.windowsValue(res, t)
		return
	}
	h[HeaderRateLimitShadow] = []string{string(appendRateLimit(nil, l.rPrefix, res.Remaining, t))}
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

// oneValue is a one-element header value and its bytes in one allocation,
// for a RateLimit value with a short name (up to 16 bytes); the string
// shares buf, never written again once it is.
type oneValue struct {
	v   [1]string
	buf [64]byte
}
