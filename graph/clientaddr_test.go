package graph

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientAddress(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("10.1.0.0/16")}
	tests := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"untrusted peer, no header", "203.0.113.7:5000", nil, "203.0.113.7"},
		{"untrusted peer's header is ignored", "203.0.113.7:5000", []string{"198.51.100.1"}, "203.0.113.7"},
		{"trusted peer, no header", "127.0.0.1:5000", nil, "127.0.0.1"},
		{"trusted peer names the client", "127.0.0.1:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"the nearest untrusted hop, not a spoofed leftmost", "127.0.0.1:5000",
			[]string{"6.6.6.6, 198.51.100.1, 10.1.2.3"}, "198.51.100.1"},
		{"several headers read as one list", "127.0.0.1:5000",
			[]string{"6.6.6.6", "198.51.100.1, 10.1.2.3"}, "198.51.100.1"},
		{"only trusted hops: the leftmost", "127.0.0.1:5000", []string{"10.1.0.9, 10.1.2.3"}, "10.1.0.9"},
		{"a malformed hop stops at the last good one", "127.0.0.1:5000",
			[]string{"198.51.100.1, bogus, 10.1.2.3"}, "10.1.2.3"},
		{"a hop with a port", "127.0.0.1:5000", []string{"198.51.100.1:4711"}, "198.51.100.1"},
		{"IPv6 peer and hop", "[::1]:5000", []string{"2001:db8::5"}, "2001:db8::5"},
		{"IPv4 mapped in IPv6", "[::ffff:127.0.0.1]:5000", []string{"::ffff:198.51.100.1"}, "198.51.100.1"},
		{"a trusted range other than the loopback", "10.1.7.7:80", []string{"198.51.100.1"}, "198.51.100.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/query", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := ClientAddress(r, trusted); got.String() != tt.want {
				t.Errorf("ClientAddress(peer %s, X-Forwarded-For %q) = %s, want %s", tt.peer, tt.xff, got, tt.want)
			}
		})
	}
	// With no trusted proxy, the header is never read.
	r := httptest.NewRequest("GET", "/query", nil)
	r.RemoteAddr = "127.0.0.1:1"
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	if got := ClientAddress(r, nil); got.String() != "127.0.0.1" {
		t.Errorf("ClientAddress with no trusted proxy = %s, want the peer 127.0.0.1", got)
	}
}
