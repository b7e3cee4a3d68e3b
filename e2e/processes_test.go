package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/loadgen"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/postgres"
)

// The shop as it is deployed: two APIs and each worker as a separate process built from
// ./cmd, started in a random order, sell a flash sale under load through a balancer that
// follows their readiness, while both APIs and the payments worker are replaced one after
// the other by SIGTERM as a rolling update does. No request goes unanswered or fails, the
// websocket open on the first API is told to reconnect (1012), nothing is oversold, every
// order is paid, charged once and notified, the analytics counts are exact, the sale's
// events spread over the topic's partitions, and every process exits cleanly on SIGTERM.
func TestSeparateProcessesStartInAnyOrderAndRollWithoutLoss(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	order := []struct{ name, binary string }{
		{"api-1", "api"}, {"api-2", "api"}, {"relay", "relay"},
		{"payments", "payments-worker"}, {"notifications", "notifications-worker"}, {"analytics", "analytics-worker"},
	}
	mrand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	procs := map[string]*process{}
	var names []string
	for _, o := range order {
		procs[o.name] = d.start(o.name, o.binary)
		names = append(names, o.name)
		// Each has a moment alone: a worker ahead of the relay finds no queue or topic yet.
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("started in the order %s", strings.Join(names, ", "))
	testenv.Eventually(t, 90*time.Second, func() error {
		var errs []error
		for _, p := range procs {
			errs = append(errs, p.ready())
		}
		return errors.Join(errs...)
	})
	for _, name := range []string{"payments", "notifications", "analytics", "relay"} {
		b, _ := os.ReadFile(procs[name].log)
		if !bytes.Contains(b, []byte(procs[name].addr)) || bytes.Contains(b, []byte(":8080")) {
			t.Errorf("%s's log names the API's :8080, or never its address %s (WORKER_HTTP_ADDR)\n%s", name, procs[name].addr, procs[name].tail())
		}
	}

	b := newBalancer(t)
	api1, api2 := procs["api-1"], procs["api-2"]
	b.add(api1)
	b.add(api2)
	testenv.Eventually(t, 10*time.Second, func() error {
		if !b.isUp(api1) || !b.isUp(api2) {
			return errors.New("the balancer does not send to both APIs yet")
		}
		return nil
	})
	c, err := loadgen.NewClient(b.srv.URL, 64, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const buyers, perBuyer = 40, 4
	const quantity = buyers * perBuyer // every buyer gets their limit, and the sale sells out
	admin := signIn(t, ctx, c, apitest.AdminEmail, apitest.AdminPassword)
	tokens := make([]string, buyers)
	loadgen.ForEach(ctx, buyers, 8, func(i int) {
		var out struct{ Register struct{ AccessToken string } }
		err := c.Do(ctx, "", `mutation($in: RegisterInput!) { register(input: $in) { accessToken } }`,
			map[string]any{"in": map[string]any{"email": fmt.Sprintf("buyer%d@example.com", i), "password": "buyer-password", "name": "Buyer"}}, &out)
		if err != nil {
			t.Errorf("register buyer %d: %v", i, err)
		}
		tokens[i] = out.Register.AccessToken
	})
	if t.Failed() {
		t.FailNow()
	}
	sale, startsAt := createRollSale(t, ctx, c, admin, quantity, perBuyer)

	// A subscriber on the first API, which the roll replaces.
	ws, err := apitest.DialWS(ctx, "http://"+api1.addr, tokens[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ws.Close)
	sub, err := ws.Subscribe(`subscription($id: ID!) { flashSaleStock(flashSaleId: $id) { remaining } }`, map[string]any{"id": sale})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Next(ctx); err != nil {
		t.Fatalf("the subscription's first message: %v", err)
	}
	time.Sleep(time.Until(startsAt))

	// The roll: each API in turn, and the payments worker between them, gets a replacement,
	// which (an API) joins the balancer once ready; then the old one is stopped by SIGTERM and
	// (an API) leaves the balancer, as a Deployment's rolling update does. The payments worker
	// goes while it holds deliveries of the sale's orders.
	rolled := make(chan struct{})
	rolling := []struct {
		old    *process
		binary string
	}{{api1, "api"}, {procs["payments"], "payments-worker"}, {api2, "api"}}
	go func() {
		defer close(rolled)
		for _, r := range rolling {
			repl := d.start(r.old.name+"-next", r.binary)
			deadline := time.Now().Add(60 * time.Second)
			for repl.ready() != nil {
				if time.Now().After(deadline) {
					t.Errorf("the replacement of %s is not ready: %v", r.old.name, repl.ready())
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			if r.binary == "api" {
				b.add(repl)
				for !b.isUp(repl) {
					time.Sleep(20 * time.Millisecond)
				}
			}
			r.old.stop(t, 30*time.Second)
			if r.binary == "api" {
				b.remove(r.old)
			}
			procs[r.old.name+"-next"] = repl
		}
	}()

	// The load: every buyer orders one unit a second until they reach their limit, and
	// reads the sale between orders, until the roll is over.
	var (
		mu       sync.Mutex
		accepted = map[string]int{} // order id: units
		failures []string
		requests atomic.Int64
	)
	fail := func(what string, err error) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, fmt.Sprintf("%s: %v", what, err))
	}
	var wg sync.WaitGroup
	for i, token := range tokens {
		wg.Go(func() {
			time.Sleep(time.Duration(mrand.IntN(500)) * time.Millisecond) // buyers do not press at one instant
			placed := 0
			for attempt := 0; ; attempt++ {
				select {
				case <-rolled:
					if placed == perBuyer {
						return
					}
				default:
				}
				if ctx.Err() != nil {
					return
				}
				if placed < perBuyer {
					var out struct{ PlaceFlashSaleOrder struct{ ID string } }
					key := fmt.Sprintf("buyer%d-order%d", i, placed)
					err := c.Do(ctx, token, `mutation($in: PlaceFlashSaleOrderInput!) { placeFlashSaleOrder(input: $in) { id } }`,
						map[string]any{"in": map[string]any{"flashSaleId": sale, "quantity": 1, "idempotencyKey": key}}, &out)
					requests.Add(1)
					switch code := loadgen.ErrorCode(err); code {
					case "":
						mu.Lock()
						accepted[out.PlaceFlashSaleOrder.ID] = 1
						mu.Unlock()
						placed++
					case "SALE_NOT_ACTIVE": // the clocks of the test and the APIs differ by a little
					default:
						fail(fmt.Sprintf("buyer %d's order %s", i, key), err)
						placed = perBuyer // stop ordering; the counts below tell
					}
				}
				var view struct{ FlashSale struct{ Remaining int } }
				if err := c.Do(ctx, token, `query($id: ID!) { flashSale(id: $id) { remaining } }`, map[string]any{"id": sale}, &view); err != nil {
					fail(fmt.Sprintf("buyer %d's read", i), err)
				}
				requests.Add(1)
				time.Sleep(time.Duration(300+mrand.IntN(400)) * time.Millisecond)
			}
		})
	}
	wg.Wait()
	<-rolled
	t.Logf("%d requests, %d orders accepted, %d failures during the roll", requests.Load(), len(accepted), len(failures))
	for _, f := range failures[:min(len(failures), 10)] {
		t.Errorf("lost or failed request: %s", f)
	}
	code, reason, err := ws.AwaitClose(ctx)
	if err != nil || code != 1012 {
		t.Errorf("the websocket on the rolled API closed with %d %q (%v); want 1012, Service Restart", code, reason, err)
	}
	if got := len(accepted); got != quantity {
		t.Errorf("accepted %d orders of one unit; want the sale's %d", got, quantity)
	}

	d.checkSale(t, ctx, sale, accepted, quantity)
	var view struct{ FlashSale struct{ Remaining int } }
	if err := c.Do(ctx, admin, `query($id: ID!) { flashSale(id: $id) { remaining } }`, map[string]any{"id": sale}, &view); err != nil {
		t.Errorf("read the sale: %v", err)
	} else if units := len(accepted); view.FlashSale.Remaining+units != quantity {
		t.Errorf("remaining %d + units sold %d = %d; want the quantity %d", view.FlashSale.Remaining, units, view.FlashSale.Remaining+units, quantity)
	}
	d.checkPartitions(t, ctx)

	for name, p := range procs {
		if name == "api-1" || name == "api-2" || name == "payments" {
			continue // stopped by the roll
		}
		p.stop(t, 30*time.Second)
	}
}

// signIn logs in and returns the access token.
func signIn(t *testing.T, ctx context.Context, c *loadgen.Client, email, password string) string {
	t.Helper()
	var out struct{ Login struct{ AccessToken string } }
	if err := c.Do(ctx, "", `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }`,
		map[string]any{"e": email, "p": password}, &out); err != nil {
		t.Fatalf("log in as %s: %v", email, err)
	}
	return out.Login.AccessToken
}

// createRollSale creates a product and a flash sale of it that starts in two seconds, and
// returns the sale's id and start.
func createRollSale(t *testing.T, ctx context.Context, c *loadgen.Client, admin string, quantity, perBuyer int) (string, time.Time) {
	t.Helper()
	var p struct{ CreateProduct struct{ ID string } }
	if err := c.Do(ctx, admin, `mutation($in: CreateProductInput!) { createProduct(input: $in) { id } }`,
		map[string]any{"in": map[string]any{"name": "Rolling lamp", "description": "sold while the APIs roll", "priceCents": 2000, "stock": quantity}}, &p); err != nil {
		t.Fatalf("create the product: %v", err)
	}
	startsAt := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second).UTC()
	var s struct{ CreateFlashSale struct{ ID string } }
	if err := c.Do(ctx, admin, `mutation($in: CreateFlashSaleInput!) { createFlashSale(input: $in) { id } }`,
		map[string]any{"in": map[string]any{
			"productId": p.CreateProduct.ID, "salePriceCents": 1000, "quantity": quantity, "perUserLimit": perBuyer,
			"startsAt": startsAt.Format(time.RFC3339), "endsAt": startsAt.Add(time.Hour).Format(time.RFC3339),
		}}, &s); err != nil {
		t.Fatalf("create the flash sale: %v", err)
	}
	return s.CreateFlashSale.ID, startsAt
}

// checkSale waits until PostgreSQL holds exactly the accepted orders, each PAID, charged once
// for its total, notified as placed and paid, and counted by analytics, and fails the test
// with what is missing if that does not come.
func (d *deployment) checkSale(t *testing.T, ctx context.Context, saleID string, accepted map[string]int, quantity int) {
	t.Helper()
	sale, err := flashsale.ParseSaleID(saleID)
	if err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, d.shards, postgres.Options{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	testenv.Eventually(t, 60*time.Second, func() error {
		var errs []error
		seen := map[string]bool{}
		units, paid := 0, 0
		for shard := range db.Shards() {
			rows, err := db.Pool(shard).Query(ctx,
				`SELECT o.id, o.status, o.quantity, o.total_cents, c.outcome, c.amount_cents,
				        (SELECT count(*) FROM notifications n WHERE n.order_id = o.id AND n.kind = 'order.placed'),
				        (SELECT count(*) FROM notifications n WHERE n.order_id = o.id AND n.kind = 'order.paid')
				 FROM orders o LEFT JOIN charges c ON c.order_id = o.id WHERE o.sale_id = $1`, int64(sale))
			if err != nil {
				return fmt.Errorf("read shard %d: %w", shard, err)
			}
			for rows.Next() {
				var id int64
				var status string
				var qty, total int
				var outcome *string
				var charged *int64
				var placedNotes, paidNotes int
				if err := rows.Scan(&id, &status, &qty, &total, &outcome, &charged, &placedNotes, &paidNotes); err != nil {
					rows.Close()
					return err
				}
				oid := flashsale.OrderID(id).String()
				seen[oid] = true
				if status == string(flashsale.OrderPending) || status == string(flashsale.OrderPaid) {
					units += qty
				}
				switch {
				case accepted[oid] == 0:
					errs = append(errs, fmt.Errorf("order %s is in PostgreSQL but was never accepted", oid))
				case status != string(flashsale.OrderPaid):
					errs = append(errs, fmt.Errorf("order %s is %s, want PAID", oid, status))
				case outcome == nil || *outcome != "APPROVED" || charged == nil || int(*charged) != total:
					errs = append(errs, fmt.Errorf("order %s of %d cents has charge %v of %v; want one approved charge of its total", oid, total, outcome, charged))
				case placedNotes != 1 || paidNotes != 1:
					errs = append(errs, fmt.Errorf("order %s was notified placed %d and paid %d times; want once each", oid, placedNotes, paidNotes))
				default:
					paid++
				}
			}
			if err := rows.Err(); err != nil {
				return err
			}
		}
		for id := range accepted {
			if !seen[id] {
				errs = append(errs, fmt.Errorf("accepted order %s is not in PostgreSQL", id))
			}
		}
		if units > quantity {
			errs = append(errs, fmt.Errorf("oversold: %d units in live orders of %d", units, quantity))
		}
		stats, err := postgres.NewStatsStore(db).SaleStats(ctx, sale)
		if err != nil {
			return err
		}
		if stats.Orders != len(accepted) || stats.UnitsSold != units || stats.PaidOrders != paid {
			errs = append(errs, fmt.Errorf("analytics counts %d orders, %d units, %d paid; want %d, %d, %d",
				stats.Orders, stats.UnitsSold, stats.PaidOrders, len(accepted), units, paid))
		}
		if len(errs) > 3 {
			errs = append(errs[:3], fmt.Errorf("and %d more", len(errs)-3))
		}
		return errors.Join(errs...)
	})
}

// checkPartitions fails the test unless the events topic has the partitions every process
// declares, and the sale's events went to more than one of them.
func (d *deployment) checkPartitions(t *testing.T, ctx context.Context) {
	t.Helper()
	topic := d.cfg.EventsTopic()
	conn, err := kafkago.DialContext(ctx, "tcp", d.broker.Brokers()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		t.Fatalf("read the partitions of %s: %v", topic, err)
	}
	if len(parts) != app.EventsTopicPartitions {
		t.Errorf("topic %s has %d partitions; want %d", topic, len(parts), app.EventsTopicPartitions)
	}
	used := 0
	for _, p := range parts {
		leader, err := kafkago.DialLeader(ctx, "tcp", d.broker.Brokers()[0], topic, p.ID)
		if err != nil {
			t.Fatalf("dial partition %d: %v", p.ID, err)
		}
		first, last, err := leader.ReadOffsets()
		leader.Close()
		if err != nil {
			t.Fatalf("read the offsets of partition %d: %v", p.ID, err)
		}
		if last > first {
			used++
		}
	}
	if used < 2 {
		t.Errorf("the sale's events went to %d of %d partitions; want them spread over several", used, len(parts))
	}
}
