package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/flashsale/flashsale/internal/testenv"
)

// startProxy puts a Toxiproxy in front of the broker at url and returns it with the URL that
// goes through it.
func startProxy(tb testing.TB, url string) (*toxiproxy.Proxy, string) {
	tb.Helper()
	uri, err := amqp.ParseURI(url)
	if err != nil {
		tb.Fatalf("parse %s: %v", url, err)
	}
	proxy, listen := testenv.Proxy(tb, net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port)))
	host, port, _ := net.SplitHostPort(listen)
	uri.Host = host
	uri.Port, _ = strconv.Atoi(port)
	return proxy, uri.String()
}

func TestPublisherSurvivesOutage(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitURL(t)
	top, q := testTopology(t, url, shortDelays)
	proxy, proxyURL := startProxy(t, url)
	p := newTestPublisher(t, proxyURL, top.Exchange)

	// publish sends a batch as the outbox relay would, and remembers the confirmed ids.
	var (
		confirmed []string
		batches   int
	)
	publish := func(timeout time.Duration) error {
		t.Helper()
		batches++
		msgs := make([]Message, 20)
		for i := range msgs {
			msgs[i] = Message{ID: fmt.Sprintf("b%d-%d", batches, i), RoutingKey: "order.placed"}
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		err := p.Publish(ctx, msgs...)
		if err == nil {
			for _, m := range msgs {
				confirmed = append(confirmed, m.ID)
			}
		}
		return err
	}
	// recovered publishes until a batch is confirmed, as the relay retries.
	recovered := func(what string) {
		t.Helper()
		deadline := time.Now().Add(waitTimeout)
		for {
			err := publish(5 * time.Second)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: Publish still failing after %v: %v", what, waitTimeout, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	if err := publish(waitTimeout); err != nil {
		t.Fatalf("Publish through the proxy: %v", err)
	}

	// The link goes silent: nothing reaches the broker and nothing says so. Publish gives up
	// at its deadline rather than waiting for confirms forever.
	if _, err := proxy.Toxics.AddToxicJson(strings.NewReader(
		`{"name":"blackhole","type":"timeout","stream":"upstream","attributes":{"timeout":0}}`)); err != nil {
		t.Fatalf("add timeout toxic: %v", err)
	}
	if err := publish(time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Publish over a silent link: %v, want context.DeadlineExceeded", err)
	}
	if err := proxy.Toxics.RemoveToxic(context.Background(), "blackhole"); err != nil {
		t.Fatalf("remove timeout toxic: %v", err)
	}
	recovered("after the silent link")

	// The broker goes away: its connections close and new ones are refused. Publish fails by
	// itself, long before its deadline, and does not panic.
	proxy.Stop()
	for i := range 3 {
		if err := publish(time.Minute); err == nil {
			t.Errorf("Publish %d while the broker is unreachable succeeded", i)
		} else if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Publish %d while the broker is unreachable hung until its deadline: %v", i, err)
		}
	}

	// The broker is back: the next Publish dials again.
	if err := proxy.Start(); err != nil {
		t.Fatalf("restart toxiproxy: %v", err)
	}
	recovered("after the outage")

	// Every confirmed message reached the queue; unconfirmed ones may have too.
	var (
		mu  sync.Mutex
		got = make(map[string]bool)
	)
	all := make(chan struct{})
	var once sync.Once
	startConsumer(t, ConsumerConfig{
		URL: url, Queue: q.Name, Prefetch: 50, Delays: shortDelays,
		Handler: func(ctx context.Context, d Delivery) error {
			mu.Lock()
			defer mu.Unlock()
			got[d.MessageID] = true
			for _, id := range confirmed {
				if !got[id] {
					return nil
				}
			}
			once.Do(func() { close(all) })
			return nil
		},
	})
	select {
	case <-all:
	case <-time.After(waitTimeout):
		mu.Lock()
		defer mu.Unlock()
		for _, id := range confirmed {
			if !got[id] {
				t.Errorf("confirmed message %s was not consumed", id)
			}
		}
	}
}

func TestConsumerReconnectsAfterOutage(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitURL(t)
	top, q := testTopology(t, url, shortDelays)
	proxy, proxyURL := startProxy(t, url)
	p := newTestPublisher(t, url, top.Exchange) // straight to the broker, which stays up
	ctx := testCtx(t, waitTimeout)

	inHandler := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	got := make(chan Delivery, 10)
	startConsumer(t, ConsumerConfig{
		URL: proxyURL, Queue: q.Name, Delays: shortDelays,
		Handler: func(ctx context.Context, d Delivery) error {
			if d.MessageID == "during" && !d.Redelivered {
				once.Do(func() { close(inHandler) })
				<-release
			}
			got <- d
			return nil
		},
	})
	if err := p.Publish(ctx, Message{ID: "during", RoutingKey: "order.placed"}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	receive(t, inHandler, "handler call")

	// The consumer's connection drops while it handles "during": the handler succeeds, but
	// its ack cannot reach the broker, which must hand the message out again.
	proxy.Stop()
	if err := p.Publish(ctx, Message{ID: "after", RoutingKey: "order.placed"}); err != nil {
		t.Fatalf("Publish during the outage: %v", err)
	}
	close(release)
	if d := receive(t, got, "first delivery"); d.MessageID != "during" {
		t.Fatalf("first delivery %q, want during", d.MessageID)
	}
	time.Sleep(300 * time.Millisecond) // a few failed reconnects
	if err := proxy.Start(); err != nil {
		t.Fatalf("restart toxiproxy: %v", err)
	}

	seen := make(map[string]Delivery)
	for len(seen) < 2 {
		d := receive(t, got, "delivery after the outage")
		seen[d.MessageID] = d
	}
	if d, ok := seen["during"]; !ok || !d.Redelivered {
		t.Errorf("after the outage got during=%v (redelivered %v), want it redelivered", ok, d.Redelivered)
	}
	if _, ok := seen["after"]; !ok {
		t.Errorf("message published during the outage was not consumed after it")
	}
}
