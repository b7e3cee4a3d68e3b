package postgres_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/postgres"
)

func TestFindProductsByIDs(t *testing.T) {
	t.Parallel()
	db, counter, _ := countedDB(t, 4)
	products := postgres.NewProductStore(db)
	created := createProducts(t, db, products, 24)

	var ids []flashsale.ProductID
	want := map[int]*flashsale.Product{}
	for i := len(created) - 1; i >= 0; i -= 2 {
		want[len(ids)] = created[i]
		ids = append(ids, created[i].ID)
		if i%5 == 0 {
			ids = append(ids, flashsale.NewProductID(created[i].ID.Bucket()))
		}
	}
	ids = append(ids, flashsale.NewProductID(3)) // a missing id, perhaps on an untouched shard

	counter.Reset()
	got, errs := products.FindProductsByIDs(t.Context(), ids)
	if len(got) != len(ids) || len(errs) != len(ids) {
		t.Fatalf("got %d products and %d errors for %d ids; want one each per id", len(got), len(errs), len(ids))
	}
	touched := make([]int, 4)
	for i, id := range ids {
		touched[db.ShardOf(id.Bucket())] = 1
		if w, ok := want[i]; ok {
			if errs[i] != nil || got[i] == nil || got[i].ID != w.ID || got[i].Name != w.Name ||
				got[i].PriceCents != w.PriceCents || got[i].Stock != w.Stock {
				t.Errorf("key %d (%s): got %+v, %v; want %+v", i, id, got[i], errs[i], w)
			}
		} else if code := flashsale.ErrorCode(errs[i]); code != flashsale.ENOTFOUND || got[i] != nil {
			t.Errorf("key %d (%s): got %+v, code %s; want nil, NOT_FOUND", i, id, got[i], code)
		}
	}
	wantStatements(t, counter, touched)
}

func TestListProductsPagesAcrossShards(t *testing.T) {
	t.Parallel()
	db, counter, _ := countedDB(t, 4)
	products := postgres.NewProductStore(db)
	created := createProducts(t, db, products, 40)
	wantIDs := make([]flashsale.ProductID, len(created))
	for i, p := range created {
		wantIDs[i] = p.ID
	}
	slices.Sort(wantIDs)

	// Not parallel: each page's statements are counted on the one counter.
	for _, first := range []int{1, 7, 40, 100} {
		t.Run(fmt.Sprintf("first=%d", first), func(t *testing.T) {
			var got []flashsale.ProductID
			var after flashsale.ProductID
			for page := 0; ; page++ {
				if page > len(created) {
					t.Fatalf("still paging after %d pages", page)
				}
				counter.Reset()
				list, more, err := products.ListProducts(t.Context(), first, after)
				if err != nil {
					t.Fatalf("page %d: %v", page, err)
				}
				wantStatements(t, counter, []int{1, 1, 1, 1})
				remaining := len(wantIDs) - len(got)
				if want := min(first, remaining); len(list) != want {
					t.Fatalf("page %d: got %d products, want %d", page, len(list), want)
				}
				if want := remaining > first; more != want {
					t.Fatalf("page %d: got more=%v, want %v", page, more, want)
				}
				for _, p := range list {
					got = append(got, p.ID)
				}
				if !more {
					break
				}
				after = list[len(list)-1].ID
			}
			if !slices.Equal(got, wantIDs) {
				t.Errorf("paged ids:\n got %v\nwant %v (every product once, in id order)", got, wantIDs)
			}
		})
	}
}

func TestListProductsFailsNamingTheFailedShard(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		shard int
		// fail makes the shard fail and returns the DB to read through.
		fail func(t *testing.T, urls []string, shard int) *postgres.DB
	}{
		{"unreachable database", 2, func(t *testing.T, urls []string, shard int) *postgres.DB {
			broken := slices.Clone(urls)
			broken[shard] = strings.Replace(urls[shard], dbName(t, urls[shard]), dbName(t, urls[shard])+"_missing", 1)
			return openDB(t, broken, postgres.Options{}) // pools connect lazily, so Open succeeds
		}},
		{"connections cut", 1, func(t *testing.T, urls []string, shard int) *postgres.DB {
			db := openDB(t, urls, postgres.Options{})
			if err := db.Ping(t.Context()); err != nil { // every pool holds a live connection
				t.Fatal(err)
			}
			name := dbName(t, urls[shard])
			adminExec(t, urls[shard], `ALTER DATABASE "`+name+`" WITH ALLOW_CONNECTIONS false`)
			adminExec(t, urls[shard], `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '`+name+`'`)
			return db
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			healthy, urls := testenv.DB(t, 4, postgres.Options{})
			created := createProducts(t, healthy, postgres.NewProductStore(healthy), 12)
			db := tt.fail(t, urls, tt.shard)
			products := postgres.NewProductStore(db)

			list, more, err := products.ListProducts(t.Context(), 100, 0)
			if err == nil {
				t.Fatalf("ListProducts with shard %d down: got %d products, more=%v, no error; want an error", tt.shard, len(list), more)
			}
			if len(list) != 0 || more {
				t.Errorf("ListProducts failed but returned %d products, more=%v; want none", len(list), more)
			}
			var shardErr *postgres.ShardError
			if !errors.As(err, &shardErr) {
				t.Fatalf("got error %v (%T); want a *postgres.ShardError in its chain", err, err)
			}
			if shardErr.Shard != tt.shard {
				t.Errorf("ShardError names shard %d; want %d (error: %v)", shardErr.Shard, tt.shard, err)
			}
			if want := fmt.Sprintf("shard %d", tt.shard); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
			if code := flashsale.ErrorCode(err); code != flashsale.EINTERNAL {
				t.Errorf("got code %s; want INTERNAL", code)
			}

			// A batch read fails only the ids of the failed shard.
			ids := make([]flashsale.ProductID, len(created))
			for i, p := range created {
				ids[i] = p.ID
			}
			got, errs := products.FindProductsByIDs(t.Context(), ids)
			for i, id := range ids {
				onFailed := db.ShardOf(id.Bucket()) == tt.shard
				if onFailed && errs[i] == nil {
					t.Errorf("%s lives on the failed shard but was found", id)
				}
				if !onFailed && (errs[i] != nil || got[i] == nil) {
					t.Errorf("%s lives on a healthy shard: got %v, %v; want the product", id, got[i], errs[i])
				}
			}
		})
	}
}

// createProducts inserts at least n products, more if needed until every shard holds two,
// so that lists and batches cross every shard.
func createProducts(t *testing.T, db *postgres.DB, products *postgres.ProductStore, n int) []*flashsale.Product {
	t.Helper()
	var out []*flashsale.Product
	perShard := make([]int, db.Shards())
	for i := 0; i < n || slices.Min(perShard) < 2; i++ {
		if i > 50*n {
			t.Fatalf("after %d products some shard still holds fewer than 2: %v", i, perShard)
		}
		p := &flashsale.Product{Name: fmt.Sprintf("Product %d", i), Description: "d", PriceCents: 100 + i, Stock: i}
		if err := products.CreateProduct(t.Context(), p); err != nil {
			t.Fatalf("create product %d: %v", i, err)
		}
		perShard[db.ShardOf(p.ID.Bucket())]++
		out = append(out, p)
	}
	return out
}
