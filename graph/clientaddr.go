package graph

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/flashsale/flashsale"
)

// LoopbackProxies are the proxies trusted when none are configured: a proxy on the same
// machine.
var LoopbackProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// ClientAddress returns the address of the client that sent r. It is the connection's peer,
// unless the peer is one of the trusted proxies: then it is the nearest address in
// X-Forwarded-For that is not a trusted proxy, read from the right, since every proxy
// appends the address it heard from and only the entries our own proxies wrote can be
// believed. A malformed entry ends the walk at the last address known good; so does a
// header listing only trusted proxies, which names its leftmost.
func ClientAddress(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := peer.Addr().Unmap()
	if !isTrusted(addr, trusted) {
		return addr
	}
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		hops := strings.Split(values[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			hop, ok := parseHop(hops[j])
			if !ok {
				return addr
			}
			addr = hop
			if !isTrusted(addr, trusted) {
				return addr
			}
		}
	}
	return addr
}

// parseHop reads one X-Forwarded-For entry: an address, possibly with a port.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// withClientAddress puts the request's client address in its context, for the rate limits
// and anything else that reads it (flashsale.ClientAddrFromContext).
func withClientAddress(trusted []netip.Prefix, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := ClientAddress(r, trusted); a.IsValid() {
			r = r.WithContext(flashsale.NewContextWithClientAddr(r.Context(), a))
		}
		next.ServeHTTP(w, r)
	})
}
