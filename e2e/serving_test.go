package e2e_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/apitest"
)

// wantPrompt fails unless a { __typename } answers within a few seconds: whatever the test
// did before did not take the server with it. The bound is a liveness check, not a speed one.
func wantPrompt(t *testing.T, s *apitest.Server) {
	t.Helper()
	done := make(chan *apitest.Response, 1)
	go func() { done <- s.Do(t, "", `{ __typename }`, nil) }()
	select {
	case r := <-done:
		if r.Status != http.StatusOK || len(r.Errors) > 0 {
			t.Fatalf("{ __typename } after the probe: status %d, body %.500s", r.Status, r.Body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("{ __typename } after the probe did not answer within 5 s")
	}
}

// rawRequest writes head (and body) on a fresh TCP connection and returns the first line of
// the answer, or an error if the server closed the connection or nothing came within wait.
func rawRequest(t *testing.T, s *apitest.Server, head string, wait time.Duration) (string, error) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(head)); err != nil {
		t.Fatalf("write: %v", err)
	}
	conn.SetReadDeadline(time.Now().Add(wait))
	return bufio.NewReader(conn).ReadString('\n')
}

// TestSlowClientsAreCutOff holds a request open as a slowloris would: a body shorter than its
// Content-Length, and headers that never end. Each is answered or closed at the read timeout.
func TestSlowClientsAreCutOff(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.WithConfig(func(c *app.Config) { c.ReadTimeout = 300 * time.Millisecond }))
	host := strings.TrimPrefix(s.URL, "http://")

	t.Run("short body", func(t *testing.T) {
		line, err := rawRequest(t, s, "POST /query HTTP/1.1\r\nHost: "+host+"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"query\":", 10*time.Second)
		if err != nil {
			t.Fatalf("got no answer within 10 s (%v); want 408 at the read timeout", err)
		}
		if !strings.Contains(line, " 408 ") {
			t.Errorf("got %q; want a 408 status line", strings.TrimSpace(line))
		}
	})
	t.Run("endless headers", func(t *testing.T) {
		line, err := rawRequest(t, s, "POST /query HTTP/1.1\r\nHost: "+host+"\r\nX-Slow: 1\r\n", 10*time.Second)
		if err == nil && line != "" && !strings.Contains(line, " 408 ") && !strings.Contains(line, " 400 ") {
			t.Fatalf("got %q; want the connection closed (or a 4xx) at the read timeout", strings.TrimSpace(line))
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the connection was still open after 10 s; want it closed at the read timeout")
		}
	})
	wantPrompt(t, s)
}

// TestWebsocketWithoutInitIsClosed opens a websocket that never sends connection_init.
func TestWebsocketWithoutInitIsClosed(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.WithConfig(func(c *app.Config) { c.WebsocketInitTimeout = 300 * time.Millisecond }))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/query",
		&websocket.DialOptions{Subprotocols: []string{apitest.TransportWS}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.CloseNow()
	_, _, err = conn.Read(ctx)
	if ctx.Err() != nil {
		t.Fatal("the websocket was still open after 10 s without connection_init; want it closed at the init timeout")
	}
	if status := websocket.CloseStatus(err); status == -1 {
		t.Errorf("got %v; want a close frame", err)
	}
	wantPrompt(t, s)
}

// TestWebsocketCaps opens more websockets from one address, and more subscriptions on one
// websocket, than the caps allow: the extra ones are refused and the others keep working.
func TestWebsocketCaps(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.WithConfig(func(c *app.Config) {
		c.WebsocketsPerAddress = 2
		c.SubscriptionsPerWebsocket = 2
	}))
	p := createProduct(t, s, "Capped", 100, 10)
	vars := map[string]any{"id": p.ID}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	first := s.DialWS(t, "")
	var subs []*apitest.Subscription
	for range 2 {
		sub := first.MustSubscribe(t, productStock, vars)
		if m, err := sub.Next(ctx); err != nil || len(m.Errors) > 0 {
			t.Fatalf("a subscription within the cap: %v %v", err, m.Errors)
		}
		subs = append(subs, sub)
	}
	third := first.MustSubscribe(t, productStock, vars)
	m, err := third.Next(ctx)
	if err != nil {
		t.Fatalf("the subscription over the cap: %v", err)
	}
	if got := m.Codes(); len(got) != 1 || got[0] != flashsale.ERATELIMITED {
		t.Errorf("the subscription over the cap: got codes %v; want [%s]", got, flashsale.ERATELIMITED)
	}
	// Ending one makes room for another.
	if err := subs[0].Stop(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		sub := first.MustSubscribe(t, productStock, vars)
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Errors) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a subscription after one ended: still refused with %v", m.Codes())
		}
		time.Sleep(20 * time.Millisecond)
	}

	s.DialWS(t, "")
	_, err = apitest.DialWS(ctx, s.URL, "")
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(http.StatusTooManyRequests)) {
		t.Errorf("a third websocket from one address: got %v; want status 429", err)
	}
	first.Close()
	deadline = time.Now().Add(5 * time.Second)
	for {
		ws, err := apitest.DialWS(ctx, s.URL, "")
		if err == nil {
			ws.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a websocket after one closed: still refused: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantPrompt(t, s)
}
