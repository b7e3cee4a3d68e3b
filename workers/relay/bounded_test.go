package relay_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/postgres"
	"github.com/flashsale/flashsale/stores/rabbitmq"
	"github.com/flashsale/flashsale/workers/relay"
)

// A broker that stops reading from its publishers, as RabbitMQ does under a resource alarm,
// never holds the relay's claim open past ClaimTimeout: the claim rolls back and its rows stay
// unsent, and once the broker reads again every event arrives.
func TestRelayReleasesItsClaimWhileTheBrokerStalls(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, _ := testenv.DB(t, 1, postgres.Options{})
	url := testenv.RabbitURL(t)
	name := testenv.Name()
	top := declareOrders(ctx, t, url, name)
	proxy, proxyURL := amqpProxy(t, url)
	pub := rabbitmq.NewPublisher(proxyURL, top.Exchange, log)
	t.Cleanup(func() { pub.Close() })
	// No deadline of the sink's own: the relay's ClaimTimeout is what bounds the publish.
	sink := relay.SinkFunc(func(ctx context.Context, rows []flashsale.OutboxEvent) error {
		msgs := make([]rabbitmq.Message, len(rows))
		for i, r := range rows {
			msgs[i] = rabbitmq.Message{ID: r.EventID, RoutingKey: r.Type, Body: r.Payload}
		}
		return pub.Publish(ctx, msgs...)
	})

	// A consumer counting every delivery of every event, straight from the broker.
	var (
		mu         sync.Mutex
		deliveries = map[string]int{}
	)
	consumeCtx, stopConsume := context.WithCancel(ctx)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		rabbitmq.Consume(consumeCtx, rabbitmq.ConsumerConfig{URL: url, Queue: top.Queues[0].Name, Log: log,
			Handler: func(_ context.Context, d rabbitmq.Delivery) error {
				mu.Lock()
				deliveries[d.MessageID]++
				mu.Unlock()
				return nil
			}})
	}()
	t.Cleanup(func() { stopConsume(); <-consumed })
	arrived := func(want map[string]bool) error {
		mu.Lock()
		defer mu.Unlock()
		for id := range want {
			if deliveries[id] == 0 {
				return fmt.Errorf("%d of %d events arrived; %s has not", len(deliveries), len(want), id)
			}
		}
		return nil
	}

	const limit = 500 * time.Millisecond
	relayCtx, stopRelay := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		relay.New(postgres.NewOutbox(db), flashsale.ToRabbitMQ, sink, relay.Config{
			PollInterval: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, ClaimTimeout: limit,
		}, log).Run(relayCtx)
	})
	t.Cleanup(func() { stopRelay(); wg.Wait() })

	// The publisher's connection is up and working before the broker stalls.
	before := placeOrders(t, db, 5)
	testenv.Eventually(t, 30*time.Second, func() error { return arrived(before) })

	// Nothing the relay sends now reaches the broker, and nothing says so.
	if _, err := proxy.Toxics.AddToxicJson(strings.NewReader(
		`{"name":"stall","type":"timeout","stream":"upstream","attributes":{"timeout":0}}`)); err != nil {
		t.Fatalf("add timeout toxic: %v", err)
	}
	const n = 20
	during := placeOrders(t, db, n)
	outbox := postgres.NewOutbox(db)
	var longest time.Duration
	for end := time.Now().Add(6 * limit); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		longest = max(longest, longestTransaction(t, db))
	}
	if longest > limit+time.Second {
		t.Errorf("a transaction stayed open %v while the broker stalled; want at most ClaimTimeout %v (and a moment)", longest, limit)
	}
	if longest == 0 {
		t.Errorf("saw no claim transaction while the broker stalled; the relay is not trying")
	}
	if backlog, err := outbox.Backlog(ctx, flashsale.ToRabbitMQ); err != nil || backlog != n {
		t.Errorf("backlog while the broker stalls = %d, %v; want %d", backlog, err, n)
	}

	if err := proxy.Toxics.RemoveToxic(context.Background(), "stall"); err != nil {
		t.Fatalf("remove timeout toxic: %v", err)
	}
	testenv.Eventually(t, 30*time.Second, func() error { return arrived(during) })
	testenv.Eventually(t, 10*time.Second, func() error {
		if backlog, err := outbox.Backlog(ctx, flashsale.ToRabbitMQ); err != nil || backlog != 0 {
			return fmt.Errorf("backlog after the stall = %d, %v; want 0", backlog, err)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for _, c := range deliveries {
		dups += c - 1
	}
	t.Logf("%d events, %d deliveries beyond the first (absorbed by the consumers' dedup)", len(deliveries), dups)
}

// longestTransaction returns how long the oldest transaction open on db's shard 0, other than
// this query's, has been open.
func longestTransaction(t *testing.T, db *postgres.DB) time.Duration {
	t.Helper()
	var secs float64
	err := db.Pool(0).QueryRow(context.Background(),
		`SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)::float8 FROM pg_stat_activity
		 WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL`).Scan(&secs)
	if err != nil {
		t.Fatalf("read pg_stat_activity: %v", err)
	}
	return time.Duration(secs * float64(time.Second))
}

// amqpProxy puts a Toxiproxy in front of the broker at url and returns it with the URL that
// goes through it.
// declareOrders declares an orders exchange of the test's own name with one queue taking
// every order event, deleted when the test ends.
func declareOrders(ctx context.Context, t *testing.T, url, name string) rabbitmq.Topology {
	t.Helper()
	top := rabbitmq.Topology{Exchange: name + ".orders", Queues: []rabbitmq.Queue{{Name: name + ".all", RoutingKeys: []string{"order.#"}}}}
	if err := rabbitmq.Declare(ctx, url, top); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rabbitmq.Delete(context.Background(), url, top) })
	return top
}

func amqpProxy(t *testing.T, url string) (*toxiproxy.Proxy, string) {
	t.Helper()
	uri, err := amqp.ParseURI(url)
	if err != nil {
		t.Fatal(err)
	}
	proxy, listen := testenv.Proxy(t, net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port)))
	host, port, _ := net.SplitHostPort(listen)
	uri.Host = host
	uri.Port, _ = strconv.Atoi(port)
	return proxy, uri.String()
}
