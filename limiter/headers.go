package limiter

import (
	"math"
	"net/http"
	"strconv"
	"time"
	"unsafe"

	"github.com/go402/go402/store"
)

// Names of the headers the limiter writes, in the canonical form that
// [net/http.Header] uses, so h[HeaderRateLimit] finds them without
// canonicalising on every call.
const (
	// HeaderRateLimitPolicy describes the policy (draft-ietf-httpapi-
	// ratelimit-headers-10): `"default";q=20;w=2`.
	HeaderRateLimitPolicy = "Ratelimit-Policy"
	// HeaderRateLimit reports the bucket's state for this response:
	// `"default";r=19;t=1`.
	HeaderRateLimit = "Ratelimit"
)

// The legacy de-facto headers, sent only when [Options.LegacyHeaders] is
// set. Reset is a delta in seconds (like the t parameter of RateLimit), not
// a Unix time.
const (
	headerXRateLimitLimit     = "X-Ratelimit-Limit"
	headerXRateLimitRemaining = "X-Ratelimit-Remaining"
	headerXRateLimitReset     = "X-Ratelimit-Reset"
)

// window returns the w parameter of a policy: the whole seconds an empty
// bucket takes to fill, rounded up, at least 1, so that q=Burst over w
// seconds never overstates the sustained rate.
func window(lim store.RateLimit) int64 {
	w := math.Ceil(float64(lim.Burst) / lim.Rate)
	if !(w >= 1) {
		return 1
	}
	if w > 1<<53 {
		return 1 << 53
	}
	return int64(w)
}

// quote returns name as a Structured Fields String (RFC 9651 §3.3.3). The
// name must be printable ASCII, which [New] checks.
func quote(name string) string {
	b := make([]byte, 0, len(name)+2)
	b = append(b, '"')
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, name[i])
	}
	return string(append(b, '"'))
}

// seconds returns d in whole seconds, rounded up; zero or negative d gives 0.
func seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// setHeaders writes the headers describing res into h: RateLimit-Policy and
// RateLimit always, the legacy X-RateLimit-* headers if configured. Values
// are assigned straight into the map under canonical names. The RateLimit
// value is the policy's precomputed one when the bucket was full (a client
// under its limit), else one allocation (see oneValue).
func (l *Limiter) setHeaders(h http.Header, res *Result) {
	pol := res.policy
	h[HeaderRateLimitPolicy] = pol.header

	t := seconds(res.Reset)
	switch {
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

	if l.legacy {
		h[headerXRateLimitLimit] = pol.limitValue
		h[headerXRateLimitRemaining] = []string{strconv.Itoa(res.Remaining)}
		h[headerXRateLimitReset] = []string{strconv.FormatInt(t, 10)}
	}
}

// maxParamsLen is the longest that the r and t parameters of a RateLimit
// value get after the `"name";r=` prefix: two int64s and ";t=".
const maxParamsLen = 20 + len(";t=") + 20

// appendRateLimit appends the RateLimit value `"name";r=<r>;t=<t>`, given
// its prefix `"name";r=`.
func appendRateLimit(b []byte, prefix string, r int, t int64) []byte {
	b = append(b, prefix...)
	b = strconv.AppendInt(b, int64(r), 10)
	b = append(b, ";t="...)
	return strconv.AppendInt(b, t, 10)
}

// oneValue is a header's one-element value slice and the bytes of that
// value in a single allocation, for the RateLimit value when the policy
// name is short (up to 16 bytes, like "default"). The string is made from buf
// without a copy — buf is never written again once it is — so a response
// pays for one allocation instead of two.
type oneValue struct {
	v   [1]string
	buf [64]byte
}
