package e2e_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/testenv"
)

// orderFixture places one flash-sale order for each of n buyers across a few products and
// sales, straight through the API's own services (the setup is not what is measured).
func orderFixture(t *testing.T, s *apitest.Server, n int) []flashsale.OrderID {
	t.Helper()
	ctx := context.Background()
	var sales []*flashsale.FlashSale
	for i := range 3 {
		p := &flashsale.Product{Name: fmt.Sprint("Item ", i), PriceCents: 1000, Stock: 10}
		if err := s.API.Checkout.CreateProduct(ctx, p); err != nil {
			t.Fatal(err)
		}
		sale := &flashsale.FlashSale{ProductID: p.ID, SalePriceCents: 500, Quantity: n, PerUserLimit: 1,
			StartsAt: time.Now().Add(-time.Minute), EndsAt: time.Now().Add(time.Hour)}
		if err := s.API.Checkout.CreateSale(ctx, sale); err != nil {
			t.Fatal(err)
		}
		sales = append(sales, sale)
	}
	ids := make([]flashsale.OrderID, n)
	prefix := testenv.Name()
	var wg sync.WaitGroup
	work := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				u := &flashsale.User{Email: fmt.Sprintf("%s-%d@example.test", prefix, i), Name: fmt.Sprint("Buyer ", i), Role: flashsale.RoleCustomer, PasswordHash: "x"}
				if err := s.API.Raw.Users.CreateUser(ctx, u); err != nil {
					t.Error(err)
					continue
				}
				o, err := s.API.Checkout.PlaceFlashSaleOrder(ctx, flashsale.Viewer{UserID: u.ID, Role: u.Role}, sales[i%3].ID, 1, "k")
				if err != nil {
					t.Error(err)
					continue
				}
				ids[i] = o.ID
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	return ids
}

// ordersQuery asks for each order with its buyer, product and flash sale.
func ordersQuery(ids []flashsale.OrderID) string {
	var b strings.Builder
	b.WriteString("{")
	for i, id := range ids {
		fmt.Fprintf(&b, ` o%d: order(id: %q) { id quantity user { id name } product { id name } flashSale { id salePriceCents } }`, i, id)
	}
	b.WriteString(" }")
	return b.String()
}

// flushCache drops the read cache of the server's namespace, and the server's local copies,
// so a request starts cold.
func flushCache(t *testing.T, s *apitest.Server) {
	t.Helper()
	ctx := context.Background()
	if s.API.Invalidations != nil {
		s.API.Invalidations.DropAll()
	}
	iter := s.API.Redis.Scan(ctx, 0, "{"+s.Config.Namespace+":cache:*", 1000).Iterator()
	for iter.Next(ctx) {
		s.API.Redis.Del(ctx, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestNestedReadsSendOneStatementPerEntityPerShard(t *testing.T) {
	t.Parallel()
	counter := apitest.NewStatementCounter()
	s := apitest.Start(t, apitest.WithTracer(counter), apitest.WithConfig(func(c *app.Config) {
		c.ComplexityLimit = 100_000
	}))
	ids := orderFixture(t, s, 1000)
	admin := s.AdminToken(t)

	perShard := map[int][]int{}
	for _, n := range []int{100, 1000} {
		flushCache(t, s)
		counter.Reset()
		var data map[string]struct {
			ID   string
			User struct{ Name string }
		}
		s.Do(t, admin, ordersQuery(ids[:n]), nil).MustData(t, &data)
		if got := len(data); got != n {
			t.Fatalf("%d orders asked, %d answered", n, got)
		}
		perShard[n] = counter.Counts()
		for shard, c := range perShard[n] {
			// orders, users, products and flash sales: at most one statement each.
			if c > 4 {
				t.Errorf("%d orders: shard %d got %d statements, want at most 4:\n%s", n, shard, c, counter)
			}
		}
	}
	if got, want := fmt.Sprint(perShard[1000]), fmt.Sprint(perShard[100]); got != want {
		t.Errorf("statements per shard for 1,000 orders = %s, for 100 = %s; want the same", got, want)
	}

	counter.Reset()
	s.Do(t, admin, ordersQuery(ids[:1000]), nil).MustData(t, &map[string]any{})
	if got := counter.Total(); got != 0 {
		t.Errorf("the same request again sent %d statements, want 0 (all from the cache):\n%s", got, counter)
	}
}

func TestCachedProductSeesUpdates(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	p := createProduct(t, s, "Before", 100, 5)
	query := `query($id: ID!) { product(id: $id) { name priceCents } }`
	var data struct{ Product struct{ Name string } }
	s.Do(t, "", query, map[string]any{"id": p.ID}).MustData(t, &data) // now cached
	s.Do(t, s.AdminToken(t), `mutation($id: ID!) { updateProduct(id: $id, input: {name: "After"}) { name } }`,
		map[string]any{"id": p.ID}).MustData(t, &map[string]any{})
	s.Do(t, "", query, map[string]any{"id": p.ID}).MustData(t, &data)
	if got, want := data.Product.Name, "After"; got != want {
		t.Errorf("name after update = %q, want %q", got, want)
	}
}

func TestStampedeOnAColdProductSendsOneStatement(t *testing.T) {
	t.Parallel()
	counter := apitest.NewStatementCounter()
	s := apitest.Start(t, apitest.WithTracer(counter))
	p := &flashsale.Product{Name: "Cold", PriceCents: 100}
	if err := s.API.Raw.Products.CreateProduct(context.Background(), p); err != nil { // behind the cache's back
		t.Fatal(err)
	}
	counter.Reset()
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			var data struct{ Product struct{ Name string } }
			s.Do(t, "", `query($id: ID!) { product(id: $id) { id name } }`, map[string]any{"id": p.ID.String()}).MustData(t, &data)
			if data.Product.Name != "Cold" {
				t.Errorf("name = %q, want Cold", data.Product.Name)
			}
		})
	}
	wg.Wait()
	if got := counter.Total(); got != 1 {
		t.Errorf("200 concurrent reads of a cold product sent %d statements, want 1:\n%s", got, counter)
	}
}

func TestReadsSurviveARedisOutageOfTheCache(t *testing.T) {
	t.Parallel()
	url, stop := testenv.PrivateRedis(t)
	s := apitest.Start(t, apitest.WithConfig(func(c *app.Config) { c.RedisURL = url }))
	p := createProduct(t, s, "Sturdy", 100, 5)
	stop() // the cache is gone; reads fall back to PostgreSQL
	var data struct{ Product struct{ Name string } }
	s.Do(t, "", `query($id: ID!) { product(id: $id) { name } }`, map[string]any{"id": p.ID}).MustData(t, &data)
	if data.Product.Name != "Sturdy" {
		t.Errorf("name during the outage = %q, want Sturdy", data.Product.Name)
	}
}

// A Redis that stops answering without closing its connections (a network that drops
// packets, a node frozen mid-failover) must not hold reads either: the cache gives up on it
// within its budget and reads PostgreSQL, and says so in its log.
func TestReadsFallBackToPostgreSQLWhenRedisStopsAnswering(t *testing.T) {
	t.Parallel()
	var proxy *toxiproxy.Proxy
	s := apitest.Start(t, apitest.WithShards(1), apitest.WithConfig(func(c *app.Config) {
		proxy, c.RedisURL = throughProxy(t, c.RedisURL)
	}))
	names := []string{"Cold", "Colder", "Coldest"}
	var ids []string
	for _, name := range names {
		ids = append(ids, createProduct(t, s, name, 100, 5).ID)
	}
	if _, err := proxy.Toxics.AddToxicJson(strings.NewReader(
		`{"name":"silence","type":"timeout","stream":"upstream","toxicity":1,"attributes":{"timeout":0}}`)); err != nil {
		t.Fatal(err)
	}
	read := func(i int) {
		t.Helper()
		var data struct{ Product struct{ Name string } }
		r := s.Do(t, "", `query($id: ID!) { product(id: $id) { name } }`, map[string]any{"id": ids[i]})
		if len(r.Errors) > 0 {
			t.Fatalf("read of %s while Redis is silent: %v; want PostgreSQL's answer", names[i], r.Codes())
		}
		r.MustData(t, &data)
		if data.Product.Name != names[i] {
			t.Errorf("name = %q, want %q", data.Product.Name, names[i])
		}
	}
	read(0)
	read(1)
	read(2)
	if len(s.Logs(slog.LevelWarn)) == 0 {
		t.Error("no warning of the outage was logged")
	}
}
