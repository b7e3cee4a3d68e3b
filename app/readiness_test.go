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
	readyz := func() (int, map[string]string, error) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var status map[string]string
		if err := json.Unmarshal(body, &status); err != nil {
			return 0, nil, fmt.Errorf("body %q: %v", body, err)
		}
		return resp.StatusCode, status, nil
	}
	want := func(code int, brokers func(string) bool, what string) func() error {
		return func() error {
			got, status, err := readyz()
			if err != nil {
				return err
			}
			if got != code || !brokers(status["brokers"]) {
				return fmt.Errorf("/readyz %s: %d %v; want %d", what, got, status, code)
			}
			return nil
		}
	}
	ok := func(s string) bool { return s == "ok" }
	names := func(worker string) func(string) bool {
		return func(s string) bool { return strings.Contains(s, worker) }
	}

	testenv.Eventually(t, 10*time.Second, want(http.StatusServiceUnavailable, names("no worker"), "before any worker starts"))
	s.start(payments)
	testenv.Eventually(t, 30*time.Second, want(http.StatusOK, ok, "with the payments worker consuming"))

	proxy.Stop() // RabbitMQ's connections close and new ones are refused
	testenv.Eventually(t, 30*time.Second, want(http.StatusServiceUnavailable, names("payments"), "with RabbitMQ cut off"))
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, want(http.StatusOK, ok, "once RabbitMQ is back"))
}
