package relay_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/postgres"
	"github.com/flashsale/flashsale/stores/rabbitmq"
	"github.com/flashsale/flashsale/workers/relay"
)

// With RabbitMQ unreachable, orders are still accepted (they only touch PostgreSQL), their
// events wait in the outbox, and once RabbitMQ is back every one is published.
func TestRelayCatchesUpAfterRabbitMQOutage(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, _ := testenv.DB(t, 2, postgres.Options{})
	url := testenv.RabbitURL(t)
	name := testenv.Name()
	top := declareOrders(ctx, t, url, name)

	proxy, proxyURL := amqpProxy(t, url)
	pub := rabbitmq.NewPublisher(proxyURL, top.Exchange, log)
	t.Cleanup(func() { pub.Close() })
	sink := relay.SinkFunc(func(ctx context.Context, rows []flashsale.OutboxEvent) error {
		msgs := make([]rabbitmq.Message, len(rows))
		for i, r := range rows {
			msgs[i] = rabbitmq.Message{ID: r.EventID, RoutingKey: r.Type, Body: r.Payload, Priority: r.Priority}
		}
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return pub.Publish(ctx, msgs...)
	})

	proxy.Stop() // RabbitMQ is down from the start
	relayCtx, stopRelay := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		relay.New(postgres.NewOutbox(db), flashsale.ToRabbitMQ, sink, relay.Config{PollInterval: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}, log).Run(relayCtx)
	})
	t.Cleanup(func() { stopRelay(); wg.Wait() })

	const n = 40
	want := placeOrders(t, db, n)
	outbox := postgres.NewOutbox(db)
	time.Sleep(500 * time.Millisecond) // the relay keeps trying meanwhile
	if backlog, err := outbox.Backlog(ctx, flashsale.ToRabbitMQ); err != nil || backlog != n {
		t.Fatalf("backlog during the outage = %d, %v; want %d", backlog, err, n)
	}

	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	var mu sync.Mutex
	consumeCtx, stopConsume := context.WithCancel(ctx)
	consumed := make(chan struct{})
	defer func() { stopConsume(); <-consumed }()
	go func() {
		defer close(consumed)
		rabbitmq.Consume(consumeCtx, rabbitmq.ConsumerConfig{URL: url, Queue: top.Queues[0].Name, Log: log,
			Handler: func(_ context.Context, d rabbitmq.Delivery) error {
				mu.Lock()
				got[d.MessageID] = true
				mu.Unlock()
				return nil
			}})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		done := len(got) >= n
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the outage %d of %d events arrived", len(got), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for id := range want {
		if !got[id] {
			t.Errorf("event %s never arrived", id)
		}
	}
	// An event reaches the consumer before the relay hears its confirm and marks it sent.
	for wait := time.Now().Add(10 * time.Second); ; {
		backlog, err := outbox.Backlog(ctx, flashsale.ToRabbitMQ)
		if err == nil && backlog == 0 {
			break
		}
		if time.Now().After(wait) {
			t.Errorf("backlog after catching up = %d, %v; want 0", backlog, err)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// placeOrders writes n orders (each with its order.placed event) and returns their event ids.
func placeOrders(t *testing.T, db *postgres.DB, n int) map[string]bool {
	t.Helper()
	ctx := context.Background()
	users, orders := postgres.NewUserStore(db), postgres.NewOrderStore(db)
	before := outboxEvents(t, db)
	prefix := testenv.Name()
	for i := range n {
		u := &flashsale.User{Email: fmt.Sprintf("%s-%d@example.test", prefix, i), Name: "B", Role: flashsale.RoleCustomer, PasswordHash: "x"}
		if err := users.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		o := &flashsale.Order{ID: flashsale.NewOrderID(u.ID), UserID: u.ID, ProductID: flashsale.NewProductID(1), Quantity: 1, TotalCents: 100, IdempotencyKey: "k"}
		if err := orders.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// The event ids are the outbox's; read them back.
	ids := map[string]bool{}
	for id := range outboxEvents(t, db) {
		if !before[id] {
			ids[id] = true
		}
	}
	if len(ids) != n {
		t.Fatalf("outbox holds %d new events, want %d", len(ids), n)
	}
	return ids
}

// outboxEvents returns the event ids in every shard's outbox.
func outboxEvents(t *testing.T, db *postgres.DB) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for shard := range db.Shards() {
		rows, err := db.Pool(shard).Query(context.Background(), `SELECT event_id::text FROM outbox`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			rows.Scan(&id)
			ids[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// recordingSink keeps the batches it was sent.
type recordingSink struct {
	mu      sync.Mutex
	batches []int
	ids     map[string]bool
}

func (s *recordingSink) Send(_ context.Context, rows []flashsale.OutboxEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches = append(s.batches, len(rows))
	for _, r := range rows {
		s.ids[r.EventID] = true
	}
	return nil
}

func (s *recordingSink) sent() (batches []int, ids int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.batches...), len(s.ids)
}

// A Hold keeps rows in the outbox until it returns, and is told when they were first seen;
// a relay that is Paced sends small batches, one a poll, and sends every row all the same.
func TestRelayHoldsRowsWhileHoldWaitsAndGoesAtItsPaceWhenPaced(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 1, postgres.Options{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	const n = 40
	want := placeOrders(t, db, n)
	sink := &recordingSink{ids: map[string]bool{}}

	release := make(chan struct{})
	var held sync.Once
	heldSince := make(chan time.Time, 1)
	cfg := relay.Config{
		PollInterval: 10 * time.Millisecond, PacedBatch: 8,
		Hold: func(ctx context.Context, since time.Time) {
			held.Do(func() { heldSince <- since })
			select {
			case <-release:
			case <-ctx.Done():
			}
		},
		Paced: func() bool { return true },
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { relay.New(postgres.NewOutbox(db), flashsale.ToRabbitMQ, sink, cfg, log).Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	started := time.Now()
	select {
	case since := <-heldSince:
		if since.Before(started.Add(-time.Second)) || since.After(time.Now()) {
			t.Errorf("Hold told the rows were first seen at %v; want about when the relay started, %v", since, started)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the relay never asked its Hold")
	}
	time.Sleep(100 * time.Millisecond) // ten polls' worth
	if batches, _ := sink.sent(); len(batches) != 0 {
		t.Fatalf("sent %v while the Hold waited; want nothing", batches)
	}

	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for _, ids := sink.sent(); ids < n; _, ids = sink.sent() {
		if time.Now().After(deadline) {
			t.Fatalf("sent %d of %d events after the Hold returned", ids, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	batches, _ := sink.sent()
	for _, b := range batches {
		if b > 8 {
			t.Errorf("batches %v while paced; want none over 8 rows", batches)
			break
		}
	}
	if len(batches) < n/8 {
		t.Errorf("batches %v; want at least %d of up to 8 rows", batches, n/8)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for id := range want {
		if !sink.ids[id] {
			t.Errorf("event %s never sent", id)
		}
	}
}
