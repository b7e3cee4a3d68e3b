package e2e_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/testenv"
)

// throughProxy puts a Toxiproxy in front of the server of rawURL and returns it with the URL
// that goes through it.
func throughProxy(t *testing.T, rawURL string) (*toxiproxy.Proxy, string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy, listen := testenv.Proxy(t, u.Host)
	u.Host = listen
	return proxy, u.String()
}

// readyz returns /readyz's status and its body's status by dependency.
func readyz(t *testing.T, s *apitest.Server) (int, map[string]string) {
	t.Helper()
	r := s.Get(t, "/readyz")
	var status map[string]string
	if err := json.Unmarshal(r.Body, &status); err != nil {
		t.Fatalf("/readyz: body %q is not a JSON object of strings: %v", r.Body, err)
	}
	return r.Status, status
}

// A replica with one shard down stays ready, says which shard is down, and answers the reads
// that need it UNAVAILABLE naming it, with a retryAfter; the other shard's reads succeed.
// With every shard down it is not ready.
func TestReadyzStaysReadyWithOneShardDown(t *testing.T) {
	t.Parallel()
	var proxies []*toxiproxy.Proxy
	s := apitest.Start(t, apitest.WithShards(2), apitest.WithConfig(func(c *app.Config) {
		proxied := make([]string, len(c.DatabaseShards)) // a copy: the test drops the databases by their own URLs
		for i, u := range c.DatabaseShards {
			var proxy *toxiproxy.Proxy
			proxy, proxied[i] = throughProxy(t, u)
			proxies = append(proxies, proxy)
		}
		c.DatabaseShards = proxied
	}), apitest.WithOptions(func(o *app.Options) {
		o.NoCache, o.NoResponseCache = true, true // reads go to the shards, not Redis
	}))
	onShard := map[int]string{} // a product id on each shard
	for i := 0; len(onShard) < 2; i++ {
		if i > 100 {
			t.Fatalf("100 products reached only shards %v", onShard)
		}
		p := createProduct(t, s, fmt.Sprintf("Product %d", i), 100, 1)
		onShard[s.API.DB.ShardOf(flashsale.ProductID(idNumber(t, p.ID)).Bucket())] = p.ID
	}
	if code, status := readyz(t, s); code != http.StatusOK || status["postgres"] != "ok" {
		t.Fatalf("/readyz before the cut: %d %v; want 200 with postgres ok", code, status)
	}
	read := func(id string) *apitest.Response {
		return s.Do(t, "", `query($id: ID!) { product(id: $id) { id } }`, map[string]any{"id": id})
	}

	proxies[1].Stop() // shard 1's connections close and new ones are refused
	code, status := readyz(t, s)
	if code != http.StatusOK {
		t.Errorf("/readyz with shard 1 down: %d %v; want 200", code, status)
	}
	if pg := status["postgres"]; !strings.HasPrefix(pg, "degraded") || !strings.Contains(pg, "shard 1") || strings.Contains(pg, "shard 0") {
		t.Errorf("/readyz postgres = %q; want it degraded, naming shard 1 alone", pg)
	}
	// A connection the pool handed out just before the cut fails as it is used; the next
	// read dials, and is refused.
	var failed *apitest.Response
	testenv.Eventually(t, 10*time.Second, func() error {
		failed = read(onShard[1])
		if codes := failed.Codes(); len(codes) != 1 || codes[0] != flashsale.EUNAVAILABLE {
			return fmt.Errorf("read on shard 1: codes %q, want [UNAVAILABLE]; body %s", codes, failed.Body)
		}
		return nil
	})
	if e := failed.Errors[0]; !strings.Contains(e.Message, "shard 1") || e.Extensions["retryAfter"] != float64(5) {
		t.Errorf("read on shard 1: error %q with retryAfter %v; want it to name shard 1 with retryAfter 5", e.Message, e.Extensions["retryAfter"])
	}
	var got struct{ Product struct{ ID string } }
	read(onShard[0]).MustData(t, &got)
	if got.Product.ID != onShard[0] {
		t.Errorf("read on shard 0 while shard 1 is down: %q; want %q", got.Product.ID, onShard[0])
	}

	proxies[0].Stop()
	if code, status := readyz(t, s); code != http.StatusServiceUnavailable || !strings.Contains(status["postgres"], "every shard") {
		t.Errorf("/readyz with every shard down: %d %v; want 503 saying every shard is down", code, status)
	}

	for _, p := range proxies {
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if code, status := readyz(t, s); code != http.StatusOK || status["postgres"] != "ok" {
			return fmt.Errorf("/readyz after the shards came back: %d %v; want 200, postgres ok", code, status)
		}
		return nil
	})
	read(onShard[1]).MustData(t, &got)
}

// Redis failing is reported at once, but makes the replica unready only once it has failed
// for longer than REDIS_READY_GRACE; it is ready again when Redis answers.
func TestReadyzGivesRedisAGracePeriod(t *testing.T) {
	t.Parallel()
	var proxy *toxiproxy.Proxy
	const grace = 2 * time.Second
	s := apitest.Start(t, apitest.WithShards(1), apitest.WithConfig(func(c *app.Config) {
		proxy, c.RedisURL = throughProxy(t, c.RedisURL)
		c.RedisReadyGrace = grace
	}))
	if code, status := readyz(t, s); code != http.StatusOK || status["redis"] != "ok" {
		t.Fatalf("/readyz before the cut: %d %v; want 200 with redis ok", code, status)
	}

	proxy.Stop()
	cut := time.Now()
	code, status := readyz(t, s)
	if time.Since(cut) < grace && (code != http.StatusOK || !strings.HasPrefix(status["redis"], "degraded")) {
		t.Errorf("/readyz just after Redis went away: %d %v; want 200 with redis degraded", code, status)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if code, status := readyz(t, s); code != http.StatusServiceUnavailable || status["redis"] == "ok" {
			return fmt.Errorf("/readyz with Redis gone for %v: %d %v; want 503", time.Since(cut), code, status)
		}
		return nil
	})
	if waited := time.Since(cut); waited < grace {
		t.Errorf("not ready %v after Redis went away; want no sooner than the grace, %v", waited, grace)
	}

	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if code, status := readyz(t, s); code != http.StatusOK || status["redis"] != "ok" {
			return fmt.Errorf("/readyz after Redis came back: %d %v; want 200, redis ok", code, status)
		}
		return nil
	})
}
