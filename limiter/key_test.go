package limiter

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/go402/go402/store"
)

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("2001:db8:ffff::/48"),
	}
	for _, tc := range []struct {
		name      string
		trusted   []netip.Prefix
		forwarded bool // ByForwarded rather than ByClientAddr
		remote    string
		header    []string // X-Forwarded-For (or Forwarded) lines
		other     []string // the other header, which must be ignored
		want      string   // "" means no key
	}{
		{name: "IPv4 peer", remote: "192.0.2.1:1234", want: "192.0.2.1"},
		{name: "IPv6 peer by /64", remote: "[2001:db8:1:2:3:4:5:6]:443", want: "2001:db8:1:2::/64"},
		{name: "same /64, other address", remote: "[2001:db8:1:2:ffff::1]:443", want: "2001:db8:1:2::/64"},
		{name: "IPv6 with zone", remote: "[fe80::1%eth0]:80", want: "fe80::/64"},
		{name: "IPv4-mapped peer", remote: "[::ffff:192.0.2.1]:80", want: "192.0.2.1"},
		{name: "not an address", remote: "@", want: ""},
		{name: "no port", remote: "192.0.2.1", want: ""},

		{name: "no trusted proxies: header ignored", remote: "10.0.0.1:1", header: []string{"198.51.100.7"}, want: "10.0.0.1"},
		{name: "untrusted peer: spoofed header ignored", trusted: trusted, remote: "203.0.113.9:1", header: []string{"198.51.100.7"}, want: "203.0.113.9"},
		{name: "trusted peer", trusted: trusted, remote: "10.0.0.1:1", header: []string{"198.51.100.7"}, want: "198.51.100.7"},
		{name: "client-written entries ignored", trusted: trusted, remote: "10.0.0.1:1", header: []string{"1.1.1.1, 2.2.2.2, 198.51.100.7"}, want: "198.51.100.7"},
		{name: "chain of trusted proxies", trusted: trusted, remote: "10.0.0.1:1", header: []string{"1.1.1.1, 198.51.100.7, 10.9.9.9,10.0.0.2"}, want: "198.51.100.7"},
		{name: "several header lines", trusted: trusted, remote: "10.0.0.1:1", header: []string{"1.1.1.1", "198.51.100.7, 10.0.0.5"}, want: "198.51.100.7"},
		{name: "every hop trusted", trusted: trusted, remote: "10.0.0.1:1", header: []string{"10.0.0.3, 10.0.0.2"}, want: "10.0.0.3"},
		{name: "no header from trusted peer", trusted: trusted, remote: "10.0.0.1:1", want: "10.0.0.1"},
		{name: "garbage hop: keyed by the proxy", trusted: trusted, remote: "10.0.0.1:1", header: []string{"198.51.100.7, garbage"}, want: "10.0.0.1"},
		{name: "garbage behind a trusted hop", trusted: trusted, remote: "10.0.0.1:1", header: []string{"garbage, 10.0.0.4"}, want: "10.0.0.4"},
		{name: "empty element", trusted: trusted, remote: "10.0.0.1:1", header: []string{"198.51.100.7,"}, want: "10.0.0.1"},
		{name: "hop with port", trusted: trusted, remote: "10.0.0.1:1", header: []string{"198.51.100.7:4711"}, want: "198.51.100.7"},
		{name: "IPv6 hop by /64", trusted: trusted, remote: "10.0.0.1:1", header: []string{"2001:db8:5:6:7::1"}, want: "2001:db8:5:6::/64"},
		{name: "bracketed IPv6 hop with port", trusted: trusted, remote: "10.0.0.1:1", header: []string{"[2001:db8:5:6::1]:4711"}, want: "2001:db8:5:6::/64"},
		{name: "trusted IPv6 proxy", trusted: trusted, remote: "[2001:db8:ffff::1]:1", header: []string{"198.51.100.7"}, want: "198.51.100.7"},
		{name: "X-Forwarded-For ignores Forwarded", trusted: trusted, remote: "10.0.0.1:1", other: []string{"for=1.2.3.4"}, want: "10.0.0.1"},
		{name: "IPv4-mapped trusted prefix", trusted: []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}, remote: "10.0.0.1:1", header: []string{"198.51.100.7"}, want: "198.51.100.7"},

		{name: "Forwarded", forwarded: true, trusted: trusted, remote: "10.0.0.1:1", header: []string{`for=1.1.1.1, for=198.51.100.7;proto=https;by=10.0.0.1`}, want: "198.51.100.7"},
		{name: "Forwarded quoted IPv6 with port", forwarded: true, trusted: trusted, remote: "10.0.0.1:1", header: []string{`For="[2001:db8:cafe::17]:4711"`}, want: "2001:db8:cafe::/64"},
		{name: "Forwarded unknown", forwarded: true, trusted: trusted, remote: "10.0.0.1:1", header: []string{`for=198.51.100.7, for=unknown`}, want: "10.0.0.1"},
		{name: "Forwarded obfuscated", forwarded: true, trusted: trusted, remote: "10.0.0.1:1", header: []string{`for=_hidden`}, want: "10.0.0.1"},
		{name: "Forwarded without for", forwarded: true, trusted: trusted, remote: "10.0.0.1:1", header: []string{`proto=https`}, want: "10.0.0.1"},
		{name: "Forwarded ignores X-Forwarded-For", forwarded: true, trusted: trusted, remote: "10.0.0.1:1", other: []string{"1.2.3.4"}, want: "10.0.0.1"},
		{name: "Forwarded from untrusted peer", forwarded: true, trusted: trusted, remote: "203.0.113.9:1", header: []string{"for=198.51.100.7"}, want: "203.0.113.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			header, other := "X-Forwarded-For", "Forwarded"
			by := ByClientAddr(tc.trusted...)
			if tc.forwarded {
				header, other = other, header
				by = ByForwarded(tc.trusted...)
			}
			r.Header[header] = tc.header
			r.Header[other] = tc.other
			key, ok := by(r)
			if tc.want == "" {
				if ok {
					t.Fatalf("key %q, want none", key)
				}
				return
			}
			if !ok || key != tc.want {
				t.Fatalf("key %q, %v; want %q", key, ok, tc.want)
			}
		})
	}
}

func TestInvalidPrefixPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	ByClientAddr(netip.Prefix{})
}

// ByClientAddr costs no allocation for an IPv4 peer.
func TestClientAddrAllocs(t *testing.T) {
	by := ByClientAddr(netip.MustParsePrefix("10.0.0.0/8"))
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	if n := testing.AllocsPerRun(100, func() { by(r) }); n != 0 {
		t.Fatalf("%v allocations per request", n)
	}
}

func TestByAccount(t *testing.T) {
	clk := newClock()
	pw, _ := paywalled(t, clk, store.Account{ID: "acct_1"})
	var got string
	var gotOK bool
	h := pw.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, gotOK = ByAccount().Key(r)
	}))
	serve(h, keyRequest("sk_test_acct_1"))
	if !gotOK || got != "acct_1" {
		t.Fatalf("key %q, %v", got, gotOK)
	}
	if _, ok := ByAccount().Key(httptest.NewRequest("GET", "/", nil).WithContext(context.Background())); ok {
		t.Fatal("a request without a caller has an account key")
	}
}

// Whatever the client sends, the key is an address (or /64 prefix) that
// appears in RemoteAddr or in the header, and never a client-written entry
// left of a hop that is not trusted.
func FuzzClientAddr(f *testing.F) {
	for _, s := range []string{
		"198.51.100.7", "1.1.1.1, 198.51.100.7, 10.0.0.2", "garbage", "", ",,,", "[2001:db8::1]:80",
		"for=198.51.100.7;proto=https", `for="[2001:db8::1]:80", for=unknown`, "::ffff:1.2.3.4", "10.0.0.1:99999",
	} {
		f.Add("10.0.0.1:1", s)
		f.Add("[2001:db8:ffff::1]:1", s)
		f.Add("203.0.113.9:1", s)
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	xff, fwd := ByClientAddr(trusted...), ByForwarded(trusted...)
	f.Fuzz(func(t *testing.T, remote, header string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {header}, "Forwarded": {header}}}
		for _, by := range []KeyFunc{xff, fwd} {
			key, ok := by(r)
			if !ok {
				if _, err := netip.ParseAddrPort(remote); err == nil {
					t.Fatalf("no key for RemoteAddr %q", remote)
				}
				continue
			}
			if p, err := netip.ParsePrefix(key); err == nil {
				if p.Bits() != 64 || p.Addr().Is4() || p != p.Masked() {
					t.Fatalf("key %q is not an IPv6 /64", key)
				}
			} else if a, err := netip.ParseAddr(key); err != nil || !a.Is4() {
				t.Fatalf("key %q is neither an IPv4 address nor an IPv6 /64", key)
			}
			peer, _ := netip.ParseAddrPort(remote)
			if !peer.Addr().Unmap().IsValid() {
				t.Fatalf("key %q for a RemoteAddr that is not an address", key)
			}
			// An untrusted peer is its own key.
			pa := peer.Addr().Unmap().WithZone("")
			isTrusted := isIn(trusted, pa)
			if !isTrusted && addrKey("", pa) != key {
				t.Fatalf("untrusted peer %q keyed as %q", remote, key)
			}
			if !isTrusted || key == addrKey("", pa) {
				continue
			}
			// From a trusted peer, the key is some hop's, and every hop
			// to its right is a trusted address. (Either parser may have
			// been the one used.)
			elems := strings.Split(header, ",")
			found := false
			for _, parse := range []func(string) (netip.Addr, bool){xffHop, forwardedHop} {
				for i := len(elems) - 1; i >= 0 && !found; i-- {
					a, ok := parse(trimOWS(elems[i]))
					if !ok {
						break
					}
					if addrKey("", a) == key {
						found = true
					}
					if !isIn(trusted, a) {
						break
					}
				}
			}
			if !found {
				t.Fatalf("peer %q, header %q: key %q is not the rightmost untrusted hop", remote, header, key)
			}
		}
	})
}

func isIn(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
