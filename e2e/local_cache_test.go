package e2e_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/apitest"
)

// The stores keep local copies of what they read unless app.Options.NoLocalCache, and read
// through Redis either way.
func TestLocalCacheFollowsItsSwitch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		noLocal bool
	}{
		{"on", false},
		{"off", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := apitest.Start(t, apitest.WithOptions(func(o *app.Options) { o.NoLocalCache = tc.noLocal }))
			p := createProduct(t, s, "Lamp", 1200, 5)
			id := flashsale.ProductID(idNumber(t, p.ID))
			products := s.API.Stores.Products
			peeker, ok := products.(interface {
				Peek(flashsale.ProductID) (*flashsale.Product, bool)
			})
			if !ok {
				t.Fatalf("the product store %T has no Peek", products)
			}
			read := func() {
				t.Helper()
				got, err := products.FindProductByID(t.Context(), id)
				if err != nil || got.Name != "Lamp" {
					t.Fatalf("FindProductByID = %+v, %v; want Lamp", got, err)
				}
			}
			if !tc.noLocal {
				waitUntil(t, "a local copy after a read", func() (bool, string) {
					read()
					_, ok := peeker.Peek(id)
					return ok, "no local copy"
				})
				return
			}
			// Long enough for the product's own invalidation to come back over pub/sub,
			// after which a read would fill a local copy if one were kept.
			waitUntil(t, "invalidations heard", func() (bool, string) { return s.API.Invalidations.Live(), "not live" })
			for range 25 {
				read()
				if v, ok := peeker.Peek(id); ok {
					t.Fatalf("with NoLocalCache the store holds a local copy %+v", v)
				}
				time.Sleep(20 * time.Millisecond)
			}
			key := fmt.Sprintf("{%s:cache:prd}:%d", s.Config.Namespace, id)
			if n, err := s.API.Redis.Exists(t.Context(), key).Result(); err != nil || n != 1 {
				t.Errorf("EXISTS %s = %d, %v; want the entry the reads left in Redis", key, n, err)
			}
		})
	}
}
