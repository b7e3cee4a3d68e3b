package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"

	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/testenv"
)

// A worker process is ready only while its worker's broker connection is up: not before the
// worker consumes, not while RabbitMQ is cut off, and again once it reconnects.
func TestWorkerIsReadyOnlyWhileItsBrokerIsUp(t *testing.T) {
	t.Parallel()
	var proxy *toxiproxy.Proxy
	s := newStack(t, func(c *app.Config) {
		u, err := url.Parse(c.RabbitMQURL)
		if err != nil {
			t.Fatal(err)
		}
		var listen string
		proxy, listen = testenv.Proxy(t, u.Host)
		u.Host = listen
		c.RabbitMQURL = u.String()
	})
	ready := serveOps(t, s)
	testenv.Eventually(t, 10*time.Second, ready(http.StatusServiceUnavailable, "no worker", "before any worker starts"))
	s.start(payments)
	testenv.Eventually(t, 30*time.Second, ready(http.StatusOK, "ok", "with the payments worker consuming"))

	proxy.Stop() // RabbitMQ's connections close and new ones are refused
	testenv.Eventually(t, 30*time.Second, ready(http.StatusServiceUnavailable, "payments", "with RabbitMQ cut off"))
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, ready(http.StatusOK, "ok", "once RabbitMQ is back"))
}

// serveOps serves the stack's worker endpoints on a free port until the test ends. It returns
// a check for testenv.Eventually that /readyz answers code, with a "brokers" status of "ok"
// when brokers is "ok", and one containing brokers otherwise.
func serveOps(t *testing.T, s *stack) func(code int, brokers, what string) func() error {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- app.ServeOps(ctx, addr, s.d, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("ServeOps: %v", err)
		}
	})
	return func(code int, brokers, what string) func() error {
		return func() error {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var status map[string]string
			if err := json.Unmarshal(body, &status); err != nil {
				return fmt.Errorf("body %q: %v", body, err)
			}
			got := status["brokers"]
			if resp.StatusCode != code || (brokers == "ok" && got != "ok") || !strings.Contains(got, brokers) {
				return fmt.Errorf("/readyz %s: %d %v; want %d with brokers %q", what, resp.StatusCode, status, code, brokers)
			}
			return nil
		}
	}
}

// The analytics worker is ready while its Kafka brokers answer.
func TestAnalyticsWorkerIsReadyOnlyWhileKafkaAnswers(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil)
	proxy, listen := testenv.Proxy(t, s.brokers[0])
	brokers := []string{listen}
	ready := serveOps(t, s)
	s.start(func(ctx context.Context, d *app.Deps) error { return app.RunAnalytics(ctx, d, brokers) })
	testenv.Eventually(t, 30*time.Second, ready(http.StatusOK, "ok", "with Kafka answering"))

	proxy.Stop()
	testenv.Eventually(t, 30*time.Second, ready(http.StatusServiceUnavailable, "analytics", "with Kafka cut off"))
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, ready(http.StatusOK, "ok", "once Kafka is back"))
}
