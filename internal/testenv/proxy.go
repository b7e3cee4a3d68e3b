package testenv

import (
	"net"
	"strconv"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Proxy puts an in-process Toxiproxy on a free port in front of upstream ("host:port") and
// returns it with the address to dial instead. Outage tests cut or slow the proxy, never the
// shared server other tests are using.
func Proxy(tb testing.TB, upstream string) (*toxiproxy.Proxy, string) {
	tb.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(tb)))
	proxy := toxiproxy.NewProxy(srv, Name(), listen, upstream)
	if err := proxy.Start(); err != nil {
		tb.Fatalf("testenv: start toxiproxy in front of %s: %v", upstream, err)
	}
	tb.Cleanup(proxy.Stop)
	return proxy, listen
}
