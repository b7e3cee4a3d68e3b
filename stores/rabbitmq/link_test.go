package rabbitmq

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testenv"
)

// A consumer's Link is down until it consumes, up while it does, down while its broker is
// unreachable and up again once it reconnects; a publisher's Check follows its broker too.
func TestLinkAndPublisherCheckFollowTheBroker(t *testing.T) {
	t.Parallel()
	url := testenv.RabbitURL(t)
	top, q := testTopology(t, url, shortDelays)
	proxy, proxyURL := startProxy(t, url)
	proxy.Stop() // the broker is unreachable from the start

	link := NewLink()
	if err := link.Check(t.Context()); err == nil {
		t.Fatal("a new Link is up; want down until its consumer consumes")
	}
	startConsumer(t, ConsumerConfig{URL: proxyURL, Queue: q.Name, Delays: shortDelays, Link: link,
		Handler: func(context.Context, Delivery) error { return nil }})
	pub := newTestPublisher(t, proxyURL, top.Exchange)

	up := func(what string, check func(context.Context) error) func() error {
		return func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := check(ctx); err != nil {
				return fmt.Errorf("%s: %v; want up", what, err)
			}
			return nil
		}
	}
	down := func(what string, check func(context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := check(ctx); err == nil {
			t.Errorf("%s is up while the broker is unreachable; want an error", what)
		}
	}
	time.Sleep(300 * time.Millisecond) // the consumer tries, and fails, meanwhile
	down("consumer's Link", link.Check)
	down("publisher's Check", pub.Check)

	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, waitTimeout, up("consumer's Link", link.Check))
	testenv.Eventually(t, waitTimeout, up("publisher's Check", pub.Check))

	// The broker goes away: both notice as their connections close.
	proxy.Stop()
	testenv.Eventually(t, waitTimeout, func() error {
		if link.Check(t.Context()) == nil {
			return fmt.Errorf("the consumer's Link is still up after the broker went away")
		}
		if pub.Check(t.Context()) == nil {
			return fmt.Errorf("the publisher's Check is still up after the broker went away")
		}
		return nil
	})

	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, waitTimeout, up("consumer's Link after reconnecting", link.Check))
}
