package limiter

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/go402/go402/paywall"
)

// A Keyer says whose bucket a request takes tokens from: [ByAccount],
// [ByClientAddr], [ByForwarded], or a [KeyFunc] of your own.
type Keyer interface {
	// Key returns the request's key, or false when it cannot tell; every
	// such request then shares one bucket, so an unidentified client is
	// limited rather than let through unlimited.
	Key(r *http.Request) (key string, ok bool)
}

// A KeyFunc is a function that is a [Keyer]. The key is kept in memory (and,
// with [Options.Store], in the store) for as long as the bucket lives.
// Never return a secret such as a raw API key: key by account with
// [ByAccount], or by a digest.
type KeyFunc func(r *http.Request) (key string, ok bool)

// Key implements [Keyer] by calling f.
func (f KeyFunc) Key(r *http.Request) (string, bool) { return f(r) }

// ByAccount keys requests by the ID of the account that
// [paywall.Paywall.Authenticate] put in the request's context, and takes
// from the account's own bucket in [Options.Store] ([store.Bucket] Account
// set), which a sharded store keeps beside the account. A request that
// Authenticate let through on a store failure (FailOpen) shares one bucket
// with the others like it; a request that no Authenticate saw is refused
// with 500 misconfigured.
func ByAccount() Keyer { return accountKeyer{} }

// accountKeyer is the Keyer of ByAccount.
type accountKeyer struct{}

func (accountKeyer) Key(r *http.Request) (string, bool) {
	c, ok := paywall.CallerFromContext(r.Context())
	if !ok {
		return "", false
	}
	return c.Account.ID, true
}

// ByClientAddr keys requests by the client's IP address: IPv4 addresses
// whole, IPv6 addresses by their /64 prefix (the smallest block a site is
// usually given, so one client cannot rotate through its own addresses).
//
// The address is the request's RemoteAddr — the peer of the TCP connection —
// unless that peer is inside one of the trusted prefixes, the proxies in
// front of this server. Only then is X-Forwarded-For read, from the right:
// hops that are themselves trusted are skipped, and the first untrusted one
// is the client. Entries to its left were written by the client and are
// never believed. If the hop a trusted proxy wrote is not an IP address, the
// request is keyed by that proxy's address. With no trusted prefixes (the
// default) headers are never read: a spoofable header must not decide whose
// bucket pays.
//
// Requests whose RemoteAddr is not an IP address and port (a Unix socket,
// for example) share one bucket. Use [ByForwarded] if the proxies write the
// RFC 7239 Forwarded header instead. ByClientAddr panics if a prefix is
// invalid (such as the zero netip.Prefix): a programming error, found at
// start-up.
func ByClientAddr(trusted ...netip.Prefix) KeyFunc {
	return byAddr(trusted, headerXForwardedFor, xffHop)
}

// ByForwarded is [ByClientAddr] reading the for= parameter of the RFC 7239
// Forwarded header instead of X-Forwarded-For. Only one of the two headers
// is ever read, the one the trusted proxies write: a proxy passes the other
// through from the client unchanged, so believing both would let a client
// choose its own key.
func ByForwarded(trusted ...netip.Prefix) KeyFunc {
	return byAddr(trusted, headerForwarded, forwardedHop)
}

const (
	headerXForwardedFor = "X-Forwarded-For"
	headerForwarded     = "Forwarded"
)

// byAddr builds the KeyFunc of ByClientAddr and ByForwarded. hop parses one
// comma-separated element of the header into an address.
func byAddr(trusted []netip.Prefix, header string, hop func(string) (netip.Addr, bool)) KeyFunc {
	trusted = normalizePrefixes(trusted)
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) (string, bool) {
		host, peer, ok := remoteAddr(r.RemoteAddr)
		if !ok {
			return "", false
		}
		if len(trusted) == 0 || !isTrusted(peer) {
			return addrKey(host, peer), true
		}
		client := peer
		lines := r.Header[header]
	walk:
		for i := len(lines) - 1; i >= 0; i-- {
			line := lines[i]
			for line != "" {
				var elem string
				if j := strings.LastIndexByte(line, ','); j >= 0 {
					elem, line = line[j+1:], line[:j]
				} else {
					elem, line = line, ""
				}
				a, ok := hop(trimOWS(elem))
				if !ok {
					break walk // keyed by the last trusted hop
				}
				client = a
				if !isTrusted(a) {
					break walk
				}
			}
		}
		return addrKey("", client), true
	}
}

// normalizePrefixes masks the prefixes and turns IPv4-mapped IPv6 prefixes
// into IPv4 ones, since addresses are unmapped before they are compared. It
// panics on an invalid prefix (such as the zero netip.Prefix), a programming
// error found at start-up.
func normalizePrefixes(in []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(in))
	for _, p := range in {
		if !p.IsValid() {
			panic("limiter: invalid trusted proxy prefix " + p.String())
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out
}

// remoteAddr parses a RemoteAddr of the form "host:port". host is the text
// of the address when it is a plain IPv4 address (whose text is canonical),
// so that the common case needs no allocation.
func remoteAddr(s string) (host string, a netip.Addr, ok bool) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return "", netip.Addr{}, false
	}
	a = ap.Addr()
	if a.Is4() {
		host = s[:strings.LastIndexByte(s, ':')]
	}
	return host, a.Unmap().WithZone(""), true
}

// addrKey returns the bucket key of a: its text for IPv4 (host, if not
// empty, is that text already), the text of its /64 prefix for IPv6.
func addrKey(host string, a netip.Addr) string {
	if a.Is4() {
		if host != "" {
			return host
		}
		return a.String()
	}
	p, _ := a.Prefix(64)
	var buf [48]byte
	b := p.Addr().AppendTo(buf[:0])
	return string(append(b, "/64"...))
}

// xffHop parses one X-Forwarded-For element: an IP address, or one with a
// port as some proxies write ("192.0.2.1:4711", "[2001:db8::1]:4711").
func xffHop(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}

// forwardedHop parses one element of a Forwarded header (RFC 7239 §4):
// semicolon-separated pairs, of which it reads for=, whose value is a token
// or a quoted string holding an IPv4 address, a bracketed IPv6 address, or
// either with a port. "unknown" and obfuscated identifiers ("_hidden") are
// not addresses.
func forwardedHop(s string) (netip.Addr, bool) {
	for s != "" {
		var pair string
		pair, s, _ = strings.Cut(s, ";")
		name, value, ok := strings.Cut(trimOWS(pair), "=")
		if !ok || !strings.EqualFold(trimOWS(name), "for") {
			continue
		}
		value = trimOWS(value)
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		if strings.HasPrefix(value, "[") && strings.HasSuffix(value, "]") {
			value = value[1 : len(value)-1]
		}
		return xffHop(value)
	}
	return netip.Addr{}, false
}

// trimOWS trims the optional white space (spaces and tabs) that HTTP allows
// around field values and list elements.
func trimOWS(s string) string { return strings.Trim(s, " \t") }
