package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/graph"
	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/redis"
)

// The subscriptions of the contract, and the mutation that moves stock.
const (
	saleStock    = `subscription($id: ID!) { flashSaleStock(flashSaleId: $id) { remaining at } }`
	productStock = `subscription($id: ID!) { productStock(productId: $id) { remaining at } }`
	orderChanges = `subscription { orderStatusChanged { id status user { id } flashSale { id } product { name } } }`
	placeInSale  = `mutation($in: PlaceFlashSaleOrderInput!) { placeFlashSaleOrder(input: $in) { id status } }`
)

// patience bounds each wait for something that should come at once. It is generous, for a
// loaded machine running the race detector; no test asserts how fast anything is.
const patience = 30 * time.Second

// TestStockSubscriptionStartsWithCurrentValue: the first message is the count as it stands,
// sent at once, with no change needed to trigger it.
func TestStockSubscriptionStartsWithCurrentValue(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	buyer := customer(t, s, "early@example.test")
	saleID, productID := activeSale(t, s, "Lamp", 10, 10)
	placeOrders(t, s, buyer, saleID, 3)
	var placed struct{ PlaceOrder struct{ ID string } }
	s.Do(t, buyer, `mutation($in: PlaceOrderInput!) { placeOrder(input: $in) { id } }`, map[string]any{
		"in": map[string]any{"productId": productID, "quantity": 4, "idempotencyKey": testenv.Name()},
	}).MustData(t, &placed)

	tests := []struct {
		name, query, id string
		want            int
	}{
		{"flash sale", saleStock, saleID, 10 - 3},
		{"product", productStock, productID, 100 - 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sub := s.DialWS(t, "").MustSubscribe(t, tt.query, map[string]any{"id": tt.id})
			if got := nextRemaining(t, sub); got != tt.want {
				t.Errorf("first message: got remaining %d, want %d", got, tt.want)
			}
		})
	}
}

// TestStockSubscriptionOverBothProtocols: graphql-transport-ws and the legacy graphql-ws
// both carry the first value, the changes, and the end of a subscription the client stops.
func TestStockSubscriptionOverBothProtocols(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	buyer := customer(t, s, "both@example.test")
	for _, protocol := range []string{apitest.TransportWS, apitest.LegacyWS} {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			saleID, _ := activeSale(t, s, "Kettle "+protocol, 5, 5)
			sub := s.DialWS(t, "", apitest.WithProtocol(protocol)).MustSubscribe(t, saleStock, map[string]any{"id": saleID})
			if got, want := nextRemaining(t, sub), 5; got != want {
				t.Fatalf("first message: got remaining %d, want %d", got, want)
			}
			placeOrders(t, s, buyer, saleID, 2)
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			if err := awaitRemaining(ctx, sub, 3); err != nil {
				t.Fatal(err)
			}
			if err := sub.Stop(); err != nil {
				t.Fatal(err)
			}
			for {
				_, err := sub.Next(ctx)
				if errors.Is(err, apitest.ErrCompleted) {
					break
				} else if err != nil {
					t.Fatalf("after stopping: got %v, want the operation completed", err)
				}
			}
		})
	}
}

// TestSubscriptionErrors: a subscription that cannot start ends with the contract's code, and
// a token the server refuses fails the connection_init.
func TestSubscriptionErrors(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	tests := []struct {
		name, query string
		vars        map[string]any
		want        string
	}{
		{"unknown sale", saleStock, map[string]any{"id": "sal_1"}, flashsale.ENOTFOUND},
		{"malformed sale id", saleStock, map[string]any{"id": "nope"}, flashsale.EINVALID},
		{"unknown product", productStock, map[string]any{"id": "prd_1"}, flashsale.ENOTFOUND},
		{"orders of nobody", orderChanges, nil, flashsale.EUNAUTHENTICATED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sub := s.DialWS(t, "").MustSubscribe(t, tt.query, tt.vars)
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			m, err := sub.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			apitest.CheckErrors(t, &apitest.Response{Errors: m.Errors})
			if got := m.Codes(); !slices.Equal(got, []string{tt.want}) {
				t.Errorf("got codes %q, want [%q]", got, tt.want)
			}
		})
	}
	t.Run("refused token", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		if ws, err := apitest.DialWS(ctx, s.URL, "garbage"); err == nil {
			ws.Close()
			t.Errorf("connection_init with a garbage token: got an ack, want the connection refused")
		}
	})
}

// TestStockFansOutAcrossAPIProcesses: a subscriber on one API process sees the orders taken
// through another, and each process holds one Redis subscription for the sale.
func TestStockFansOutAcrossAPIProcesses(t *testing.T) {
	t.Parallel()
	first := apitest.Start(t)
	second := apitest.StartReplica(t, first)
	saleID, _ := activeSale(t, first, "Chair", 10, 10)
	buyer := customer(t, first, "replica@example.test") // the replica shares the JWT secret

	onFirst := first.DialWS(t, "").MustSubscribe(t, saleStock, map[string]any{"id": saleID})
	onSecond := second.DialWS(t, "").MustSubscribe(t, saleStock, map[string]any{"id": saleID})
	for name, sub := range map[string]*apitest.Subscription{"first": onFirst, "second": onSecond} {
		if got, want := nextRemaining(t, sub), 10; got != want {
			t.Fatalf("first message on the %s process: got remaining %d, want %d", name, got, want)
		}
	}
	for _, s := range []*apitest.Server{first, second} {
		if got, want := s.API.StockBus.Subscriptions(), 1; got != want {
			t.Errorf("Redis subscriptions of one process: got %d, want %d", got, want)
		}
	}
	if got, want := redisSubscribers(t, first, saleID), int64(2); got != want {
		t.Errorf("Redis subscribers of the sale's channel: got %d, want %d (one per process)", got, want)
	}

	steps := []struct {
		via  *apitest.Server
		n    int
		want int
	}{
		{second, 4, 6}, // the subscriber on the first process hears of the second's orders
		{first, 6, 0},  // and the other way round
	}
	for _, step := range steps {
		placeOrders(t, step.via, buyer, saleID, step.n)
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		for name, sub := range map[string]*apitest.Subscription{"first": onFirst, "second": onSecond} {
			if err := awaitRemaining(ctx, sub, step.want); err != nil {
				t.Fatalf("subscriber on the %s process: %v", name, err)
			}
		}
		cancel()
	}
}

// TestThousandSubscribersSeeTheSellOut: 1,000 websockets watching one sale on one API process
// all receive the final 0, over one Redis subscription.
func TestThousandSubscribersSeeTheSellOut(t *testing.T) {
	t.Parallel()
	const subscribers, quantity = 1000, 40
	needFiles(t, 2*subscribers+1000) // both ends of each socket live in this process
	s := apitest.Start(t)
	saleID, _ := activeSale(t, s, "Headphones", quantity, quantity)
	buyer := customer(t, s, "thousand@example.test")

	subs := make([]*apitest.Subscription, subscribers)
	errs := make([]error, subscribers)
	forEach(subscribers, func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*patience)
		defer cancel()
		// Each watcher is a browser of its own, forwarded by a proxy on the loopback as an
		// ingress would: one address holds only a few websockets.
		from := http.Header{"X-Forwarded-For": {fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)}}
		ws, err := apitest.DialWS(ctx, s.URL, "", apitest.WithHeader(from))
		if err != nil {
			errs[i] = err
			return
		}
		t.Cleanup(ws.Close)
		if subs[i], err = ws.Subscribe(saleStock, map[string]any{"id": saleID}); err != nil {
			errs[i] = err
			return
		}
		m, err := subs[i].Next(ctx)
		if err != nil {
			errs[i] = err
		} else if n, err := remainingOf(m); err != nil || n != quantity {
			errs[i] = fmt.Errorf("first message: got remaining %d (%v), want %d", n, err, quantity)
		}
	})
	failIfAny(t, "subscribe", errs)
	if got, want := s.API.StockBus.Subscriptions(), 1; got != want {
		t.Errorf("Redis subscriptions with %d subscribers: got %d, want %d", subscribers, got, want)
	}
	if got, want := redisSubscribers(t, s, saleID), int64(1); got != want {
		t.Errorf("Redis subscribers of the sale's channel: got %d, want %d", got, want)
	}

	placeOrders(t, s, buyer, saleID, quantity)
	forEach(subscribers, func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*patience)
		defer cancel()
		errs[i] = awaitRemaining(ctx, subs[i], 0)
	})
	failIfAny(t, "await the sell-out", errs)
}

// TestStalledSubscriberDoesNotHoldOthersBack: a client that stops reading, so that the
// server's writes to it block, delays no one else's updates.
func TestStalledSubscriberDoesNotHoldOthersBack(t *testing.T) {
	t.Parallel()
	// The query below, 500 aliases, has 6,000 tokens: twice the complexity limit raises the
	// size limits to let it through.
	s, server := labeledStart(t, apitest.WithConfig(func(c *app.Config) { c.ComplexityLimit = 2 * graph.ComplexityLimit }))
	saleID, _ := activeSale(t, s, "Blender", 10, 10)
	buyer := customer(t, s, "stall@example.test")
	var big struct{ CreateProduct struct{ ID string } }
	s.Do(t, s.AdminToken(t), `mutation($in: CreateProductInput!) { createProduct(input: $in) { id } }`, map[string]any{
		"in": map[string]any{"name": "Encyclopedia", "description": strings.Repeat("x", flashsale.MaxDescriptionLen), "priceCents": 100, "stock": 1},
	}).MustData(t, &big)

	stalled := s.DialWS(t, "")
	defer stalled.CloseNow() // a close handshake would have to read all it was sent
	sub := stalled.MustSubscribe(t, saleStock, map[string]any{"id": saleID})
	if got, want := nextRemaining(t, sub), 10; got != want {
		t.Fatalf("first message: got remaining %d, want %d", got, want)
	}
	stalled.StopReading()
	// Answers the stalled client never reads: 8 × 500 × 10 kB, far more than the kernel
	// buffers of both ends hold, so the server's writer for that socket blocks for good. (With
	// 3, one read whole before the stall and a receive buffer grown by autotuning, up to
	// tcp_rmem's 32 MB here, sometimes held the rest, and nothing blocked.)
	var q strings.Builder
	q.WriteString("query($id: ID!) {")
	for i := range 500 {
		fmt.Fprintf(&q, " a%d: product(id: $id) { description }", i)
	}
	q.WriteString(" }")
	for range 8 {
		stalled.MustSubscribe(t, q.String(), map[string]any{"id": big.CreateProduct.ID})
	}
	waitUntil(t, "the server blocks writing to the stalled socket", func() (bool, string) {
		return server.blockedWriting(), server.stacks()
	})

	others := make([]*apitest.Subscription, 20)
	for i := range others {
		others[i] = s.DialWS(t, "").MustSubscribe(t, saleStock, map[string]any{"id": saleID})
		if got, want := nextRemaining(t, others[i]), 10; got != want {
			t.Fatalf("first message: got remaining %d, want %d", got, want)
		}
	}
	placeOrders(t, s, buyer, saleID, 10)
	errs := make([]error, len(others))
	forEach(len(others), func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		errs[i] = awaitRemaining(ctx, others[i], 0)
	})
	failIfAny(t, "await the sell-out beside a stalled client", errs)
	if !server.blockedWriting() {
		t.Errorf("the server's writes to the stalled socket no longer block; the test proved nothing")
	}
}

// TestOneRedisSubscriptionPerSalePerProcess: however many subscribers, sockets and
// subscriptions per socket, a process holds one Redis subscription per sale watched, and none
// once everyone has gone.
func TestOneRedisSubscriptionPerSalePerProcess(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t)
	saleA, _ := activeSale(t, s, "Desk", 5, 5)
	saleB, _ := activeSale(t, s, "Shelf", 5, 5)

	var sockets []*apitest.WS
	for i := range 30 {
		ws := s.DialWS(t, "")
		sockets = append(sockets, ws)
		watch := []string{saleA}
		if i%3 == 0 {
			watch = append(watch, saleB)
		}
		if i == 0 {
			watch = append(watch, saleA, saleA, saleB) // one socket, the same sale again
		}
		for _, id := range watch {
			nextRemaining(t, ws.MustSubscribe(t, saleStock, map[string]any{"id": id}))
		}
	}
	if got, want := s.API.StockBus.Subscriptions(), 2; got != want {
		t.Errorf("Redis subscriptions for 2 sales: got %d, want %d", got, want)
	}
	for _, id := range []string{saleA, saleB} {
		if got, want := redisSubscribers(t, s, id), int64(1); got != want {
			t.Errorf("Redis subscribers of sale %s's channel: got %d, want %d", id, got, want)
		}
	}

	for i, ws := range sockets {
		if i%2 == 0 {
			ws.Close()
		} else {
			ws.CloseNow() // gone without a goodbye
		}
	}
	waitUntil(t, "the Redis subscriptions end with their subscribers", func() (bool, string) {
		n, a, b := s.API.StockBus.Subscriptions(), redisSubscribers(t, s, saleA), redisSubscribers(t, s, saleB)
		return n == 0 && a == 0 && b == 0, fmt.Sprintf("StockBus.Subscriptions() = %d, channel subscribers %d and %d", n, a, b)
	})
}

// TestSubscriptionsLeaveNoGoroutinesBehind: after subscribers come, get updates and go, in
// every way they can go, the server runs as many goroutines as before.
func TestSubscriptionsLeaveNoGoroutinesBehind(t *testing.T) {
	t.Parallel()
	s, server := labeledStart(t)
	saleID, productID := activeSale(t, s, "Toaster", 100, 100)
	buyer := customer(t, s, "leak@example.test")

	cycle := func() {
		t.Helper()
		var sockets []*apitest.WS
		var subs []*apitest.Subscription
		for i := range 12 {
			protocol := apitest.TransportWS
			if i%4 == 3 {
				protocol = apitest.LegacyWS
			}
			ws := s.DialWS(t, "", apitest.WithProtocol(protocol))
			sockets = append(sockets, ws)
			for _, sub := range []*apitest.Subscription{
				ws.MustSubscribe(t, saleStock, map[string]any{"id": saleID}),
				ws.MustSubscribe(t, productStock, map[string]any{"id": productID}),
			} {
				nextRemaining(t, sub)
				subs = append(subs, sub)
			}
		}
		before := saleRemaining(t, s, saleID)
		placeOrders(t, s, buyer, saleID, 2)
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		for i := 0; i < len(subs); i += 2 {
			if err := awaitRemaining(ctx, subs[i], before-2); err != nil {
				t.Fatal(err)
			}
		}
		for i, ws := range sockets {
			switch i % 3 {
			case 0: // stops its subscriptions, then says goodbye
				for _, sub := range subs[2*i : 2*i+2] {
					if err := sub.Stop(); err != nil {
						t.Fatal(err)
					}
				}
				ws.Close()
			case 1:
				ws.Close()
			case 2:
				ws.CloseNow()
			}
		}
		waitUntil(t, "the Redis subscriptions end", func() (bool, string) {
			n := s.API.StockBus.Subscriptions()
			return n == 0, fmt.Sprintf("StockBus.Subscriptions() = %d", n)
		})
	}

	cycle() // makes what is made once: pools' connections, caches, HTTP keep-alives
	want, _ := server.count()
	cycle()
	waitUntil(t, "the server's goroutines go back to where they were", func() (bool, string) {
		got, stacks := server.count()
		return got <= want, fmt.Sprintf("got %d goroutines, want at most %d:\n%s", got, want, stacks)
	})
}

// TestOrderStatusChangedShowsOwnOrdersOnly: a buyer's subscription follows their order from
// PENDING to PAID (the payment worker charges it), and carries nothing of anybody else's.
func TestOrderStatusChangedShowsOwnOrdersOnly(t *testing.T) {
	t.Parallel()
	s := apitest.StartStack(t)
	saleID, _ := activeSale(t, s, "Scooter", 10, 5)
	type buyer struct {
		name, token, id string
		orders          *apitest.Subscription
	}
	var buyers []*buyer
	for _, name := range []string{"alice", "bob"} {
		b := &buyer{name: name}
		b.token, _, b.id = s.Register(t, name+"@example.test", "customer-password", name)
		b.orders = s.DialWS(t, b.token).MustSubscribe(t, orderChanges, nil)
		buyers = append(buyers, b)
	}
	// The subscription has no acknowledgement; the bus's count shows when both are in place.
	waitUntil(t, "both order subscriptions are in place", func() (bool, string) {
		n := s.API.OrderBus.Subscribers()
		return n == 2, fmt.Sprintf("OrderBus.Subscribers() = %d", n)
	})

	// Each buyer in turn orders and follows the order to PAID. Whatever either received of
	// the other's orders would have come first: the bus hands out changes in order.
	for _, b := range append(buyers, buyers[0]) {
		orderID := placeOrders(t, s, b.token, saleID, 1)[0]
		ctx, cancel := context.WithTimeout(context.Background(), 2*patience)
		var got []string
		for !slices.Contains(got, "PAID") {
			m, err := b.orders.Next(ctx)
			if err != nil {
				t.Fatalf("%s's order %s: after statuses %q: %v", b.name, orderID, got, err)
			}
			var data struct {
				OrderStatusChanged struct {
					ID, Status string
					User       struct{ ID string }
					FlashSale  struct{ ID string }
					Product    struct{ Name string }
				}
			}
			if err := m.Decode(&data); err != nil {
				t.Fatal(err)
			}
			o := data.OrderStatusChanged
			if o.ID != orderID || o.User.ID != b.id {
				t.Fatalf("%s got a change of order %s of user %s; want only their own order %s", b.name, o.ID, o.User.ID, orderID)
			}
			if o.FlashSale.ID != saleID || o.Product.Name != "Scooter" {
				t.Errorf("order %s: got flash sale %q, product %q; want %q, %q", o.ID, o.FlashSale.ID, o.Product.Name, saleID, "Scooter")
			}
			got = append(got, o.Status)
		}
		cancel()
		if want := []string{"PENDING", "PAID"}; !slices.Equal(got, want) {
			t.Errorf("%s's order %s: got statuses %q, want %q", b.name, orderID, got, want)
		}
	}
}

// activeSale creates, as the admin, a product with 100 units and a flash sale of it that has
// started, and returns their ids.
func activeSale(t testing.TB, s *apitest.Server, name string, quantity, perUserLimit int) (saleID, productID string) {
	t.Helper()
	p := createProduct(t, s, name, 2000, 100)
	now := time.Now()
	var data struct{ CreateFlashSale struct{ ID string } }
	s.Do(t, s.AdminToken(t), `mutation($in: CreateFlashSaleInput!) { createFlashSale(input: $in) { id } }`, map[string]any{
		"in": map[string]any{
			"productId": p.ID, "salePriceCents": 1500, "quantity": quantity, "perUserLimit": perUserLimit,
			"startsAt": now.Add(-time.Minute).Format(time.RFC3339), "endsAt": now.Add(time.Hour).Format(time.RFC3339),
		},
	}).MustData(t, &data)
	return data.CreateFlashSale.ID, p.ID
}

// placeOrders buys n units of a sale, one order each, and returns the orders' ids.
func placeOrders(t testing.TB, s *apitest.Server, token, saleID string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		var data struct{ PlaceFlashSaleOrder struct{ ID string } }
		s.Do(t, token, placeInSale, map[string]any{
			"in": map[string]any{"flashSaleId": saleID, "quantity": 1, "idempotencyKey": testenv.Name()},
		}).MustData(t, &data)
		ids[i] = data.PlaceFlashSaleOrder.ID
	}
	return ids
}

// saleRemaining reads a sale's remaining count over HTTP.
func saleRemaining(t *testing.T, s *apitest.Server, saleID string) int {
	t.Helper()
	var data struct{ FlashSale struct{ Remaining int } }
	s.Do(t, "", `query($id: ID!) { flashSale(id: $id) { remaining } }`, map[string]any{"id": saleID}).MustData(t, &data)
	return data.FlashSale.Remaining
}

// remainingOf reads the count of a stock subscription's message.
func remainingOf(m apitest.Message) (int, error) {
	var data map[string]struct {
		Remaining *int      `json:"remaining"`
		At        time.Time `json:"at"`
	}
	if err := m.Decode(&data); err != nil {
		return 0, err
	}
	for _, u := range data {
		if u.Remaining != nil && !u.At.IsZero() {
			return *u.Remaining, nil
		}
	}
	return 0, fmt.Errorf("no remaining and at in %s", m.Data)
}

// nextRemaining returns the count of a stock subscription's next message.
func nextRemaining(t *testing.T, sub *apitest.Subscription) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	m, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n, err := remainingOf(m)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// awaitRemaining reads a stock subscription until its count is want. It is safe to call from
// any goroutine.
func awaitRemaining(ctx context.Context, sub *apitest.Subscription, want int) error {
	last := "none"
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			return fmt.Errorf("waiting for remaining %d (last seen: %s): %w", want, last, err)
		}
		n, err := remainingOf(m)
		if err != nil {
			return err
		}
		if n == want {
			return nil
		}
		last = fmt.Sprint(n)
	}
}

// redisSubscribers asks Redis itself how many connections subscribe to a sale's stock channel
// (named as StockBus documents: <namespace>:stock:<pool>).
func redisSubscribers(t *testing.T, s *apitest.Server, saleID string) int64 {
	t.Helper()
	id, err := flashsale.ParseSaleID(saleID)
	if err != nil {
		t.Fatal(err)
	}
	channel := s.Config.Namespace + ":stock:" + string(flashsale.SalePool(id))
	n, err := redis.Subscribers(context.Background(), s.API.Redis, channel) // on every node of a cluster
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitUntil polls cond until it holds, failing with what and cond's last description if it
// does not within patience.
func waitUntil(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %s", what, patience, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// forEach runs f(0) … f(n-1), 32 at a time.
func forEach(n int, f func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(i)
		})
	}
	wg.Wait()
}

// failIfAny fails the test with how many of errs are set and the first of them.
func failIfAny(t *testing.T, what string, errs []error) {
	t.Helper()
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		t.Fatalf("%s: %d of %d failed; the first: %v", what, len(failed), len(errs), failed[0])
	}
}

// needFiles makes sure this process may hold n open files, raising its soft limit toward the
// hard one if need be.
func needFiles(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("read the open files limit: %v", err)
	}
	if lim.Cur < n && lim.Cur < lim.Max {
		lim.Cur = min(n, lim.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatalf("raise the open files limit to %d: %v", lim.Cur, err)
		}
	}
	if lim.Cur < n {
		t.Fatalf("this test needs %d open files, and the hard limit is %d: raise it (ulimit -Hn)", n, lim.Max)
	}
}

// goroutineLabel is the pprof label key that marks a labeledStart server's goroutines.
const goroutineLabel = "apitest-server"

// serverGoroutines names the goroutines of one labeledStart server.
type serverGoroutines string

// labeledStart starts a server whose goroutines all carry a pprof label of their own: they
// inherit it from the goroutine that started them, and every goroutine of the server descends
// from the one that called Start. Tests can then count and read them while other tests run
// in parallel, which runtime.NumGoroutine or goleak cannot tell apart.
func labeledStart(t *testing.T, opts ...apitest.Option) (*apitest.Server, serverGoroutines) {
	t.Helper()
	name := testenv.Name()
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels(goroutineLabel, name)))
	defer pprof.SetGoroutineLabels(context.Background())
	return apitest.Start(t, opts...), serverGoroutines(name)
}

// groups returns the server's goroutines grouped by stack, as "N @ …" blocks of the goroutine
// profile, and how many there are.
func (g serverGoroutines) groups() (n int, groups []string) {
	var buf bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&buf, 1)
	_, profile, _ := strings.Cut(buf.String(), "\n") // the "goroutine profile: total N" line
	label := fmt.Sprintf("%q:%q", goroutineLabel, string(g))
	for _, group := range strings.Split(profile, "\n\n") {
		head, rest, _ := strings.Cut(group, "\n")
		if !strings.HasPrefix(rest, "# labels: ") || !strings.Contains(strings.SplitN(rest, "\n", 2)[0], label) {
			continue
		}
		var count int
		if _, err := fmt.Sscanf(head, "%d @", &count); err == nil {
			n += count
			groups = append(groups, group)
		}
	}
	return n, groups
}

func (g serverGoroutines) count() (int, string) {
	n, groups := g.groups()
	return n, strings.Join(groups, "\n\n")
}

func (g serverGoroutines) stacks() string {
	_, s := g.count()
	return s
}

// blockedWriting reports whether one of the server's goroutines waits for a websocket's
// socket to take more bytes: its peer has stopped reading and every buffer on the way is full.
func (g serverGoroutines) blockedWriting() bool {
	_, groups := g.groups()
	for _, group := range groups {
		if strings.Contains(group, "waitWrite") && strings.Contains(group, "WriteJSON") {
			return true
		}
	}
	return false
}
