package postgres_test

import (
	"errors"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/postgres"
)

// A shard that cannot be reached fails the reads that need it with UNAVAILABLE, naming the
// shard and saying when to retry; the other shards go on answering, and PingShards tells
// which one is down.
func TestUnreachableShardIsUnavailableAndNamed(t *testing.T) {
	t.Parallel()
	healthy, urls := testenv.DB(t, 2, postgres.Options{})
	created := createProducts(t, healthy, postgres.NewProductStore(healthy), 4)

	const down = 1
	u, err := url.Parse(urls[down])
	if err != nil {
		t.Fatal(err)
	}
	proxy, listen := testenv.Proxy(t, u.Host)
	u.Host = listen
	proxied := slices.Clone(urls)
	proxied[down] = u.String()
	db := openDB(t, proxied, postgres.Options{})
	products := postgres.NewProductStore(db)
	if errs := db.PingShards(t.Context()); errors.Join(errs...) != nil {
		t.Fatalf("PingShards before the cut: %v", errs)
	}

	proxy.Stop() // the shard's connections close and new ones are refused
	errs := db.PingShards(t.Context())
	if errs[0] != nil || errs[down] == nil {
		t.Errorf("PingShards with shard %d down = %v; want an error for it alone", down, errs)
	}
	for _, p := range created {
		shard := db.ShardOf(p.ID.Bucket())
		got, err := products.FindProductByID(t.Context(), p.ID)
		if shard != down {
			if err != nil || got.ID != p.ID {
				t.Errorf("product %s on healthy shard %d: %v, %v; want it", p.ID, shard, got, err)
			}
			continue
		}
		var unavailable *postgres.ShardUnavailableError
		if !errors.As(err, &unavailable) || unavailable.Shard != down {
			t.Fatalf("product %s on shard %d that is down: error %v; want a *ShardUnavailableError of shard %d", p.ID, shard, err, down)
		}
		if code := flashsale.ErrorCode(err); code != flashsale.EUNAVAILABLE {
			t.Errorf("code %s; want UNAVAILABLE", code)
		}
		if msg := flashsale.ErrorMessage(err); !strings.Contains(msg, "shard 1") {
			t.Errorf("message %q does not name shard 1", msg)
		}
		if s := flashsale.RetryAfterSeconds(err); s != int(postgres.ShardRetryAfter.Seconds()) {
			t.Errorf("retry after %ds; want %v", s, postgres.ShardRetryAfter)
		}
		var netErr net.Error
		if !errors.As(err, &netErr) {
			t.Errorf("error %v lost its cause, the dial error", err)
		}
	}

	// Back again: the shard answers without the DB being reopened.
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error { return errors.Join(db.PingShards(t.Context())...) })
}
