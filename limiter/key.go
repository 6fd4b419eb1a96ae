package limiter

import (
	"net/http"
	"net/netip"
	"slices"
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

// A KeyFunc is a function that is a [Keyer]. The key is kept in memory (and
// [Options.Store]) while the bucket lives, so never return a secret such as
// a raw API key: key by [ByAccount], or by a digest.
type KeyFunc func(r *http.Request) (key string, ok bool)

// Key implements [Keyer] by calling f.
func (f KeyFunc) Key(r *http.Request) (string, bool) { return f(r) }

// ByAccount keys requests by the ID of the account that
// [paywall.Paywall.Authenticate] put in the context, and takes from the
// account's own bucket in [Options.Store] ([store.Bucket] Account set). The
// requests Authenticate let through on a store failure (FailOpen) share one
// bucket; a request no Authenticate saw is refused with 500 misconfigured.
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

// ByClientAddr keys requests by the client's IP address: IPv4 whole, IPv6
// by its /64 prefix (a site's usual smallest block, so one client cannot
// rotate through its addresses).
//
// The address is RemoteAddr, the TCP peer, unless that is inside a trusted
// prefix (the proxies in front of this server). Only then is
// X-Forwarded-For read, from the right: trusted hops are skipped and the
// first untrusted one is the client; entries left of it, written by the
// client, are never believed. A hop that is not an IP address keys the
// request by the proxy that wrote it. With no trusted prefixes (the
// default) no header is read: a spoofable header must not decide whose
// bucket pays. Requests whose RemoteAddr is not an IP address and port (a
// Unix socket) share one bucket. Use [ByForwarded] for the RFC 7239
// Forwarded header. ByClientAddr panics on an invalid prefix (such as the
// zero netip.Prefix), a programming error found at start-up.
func ByClientAddr(trusted ...netip.Prefix) KeyFunc {
	return byAddr(trusted, "X-Forwarded-For", xffHop)
}

// ByForwarded is [ByClientAddr] reading the for= parameter of the RFC 7239
// Forwarded header instead of X-Forwarded-For. Only the header the trusted
// proxies write is read: they pass the other on from the client unchanged.
func ByForwarded(trusted ...netip.Prefix) KeyFunc {
	return byAddr(trusted, "Forwarded", forwardedHop)
}

// byAddr builds the KeyFunc of ByClientAddr and ByForwarded; hop parses one
// element of the header.
func byAddr(trusted []netip.Prefix, header string, hop func(string) (netip.Addr, bool)) KeyFunc {
	trusted = normalizePrefixes(trusted)
	isTrusted := func(a netip.Addr) bool {
		return slices.ContainsFunc(trusted, func(p netip.Prefix) bool { return p.Contains(a) })
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
				j := strings.LastIndexByte(line, ',') // -1 for the line's first element
				elem := line[j+1:]
				line = line[:max(j, 0)]
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

// normalizePrefixes masks the prefixes and unmaps IPv4-mapped ones, as
// addresses are before they are compared. It panics on an invalid prefix.
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

// remoteAddr parses a RemoteAddr "host:port"; host is set for a plain IPv4
// address (whose text is canonical), to key it without an allocation.
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

// addrKey returns a's bucket key: its text (host, if set) for IPv4, its /64
// prefix for IPv6.
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

// forwardedHop parses the for= pair of a Forwarded element (RFC 7239 §4):
// a token or quoted string holding an IPv4 or bracketed IPv6 address, with
// or without a port; "unknown" and "_hidden" names are not addresses.
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

// trimOWS trims HTTP's optional white space (spaces and tabs).
func trimOWS(s string) string { return strings.Trim(s, " \t") }
