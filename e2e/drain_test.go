package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/flashsale/flashsale/graph"
	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/testenv"
)

// A draining API (what SIGTERM starts) fails /readyz at once while it goes on answering, each
// answer asking the client to close its connection; once the delay has passed its websockets
// close with 1012 Service Restart, and Drain returns once the requests in flight have.
func TestDrainingAPIFailsReadinessFirstAndClosesWebsocketsWithServiceRestart(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.WithShards(1))
	admin := s.AdminToken(t)
	product := createProduct(t, s, "Lamp", 1500, 10)
	ws := s.DialWS(t, admin)
	sub := ws.MustSubscribe(t, `subscription($id: ID!) { productStock(productId: $id) { remaining } }`,
		map[string]any{"id": product.ID})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := sub.Next(ctx); err != nil {
		t.Fatalf("the subscription's first message: %v", err)
	}

	const delay = 1500 * time.Millisecond
	drained := make(chan error, 1)
	began := time.Now()
	go func() { drained <- s.API.Drain(ctx, delay) }()

	testenv.Eventually(t, 5*time.Second, func() error {
		status, body := readyz(t, s)
		if status != http.StatusServiceUnavailable || body["serving"] != "shutting down" {
			return fmt.Errorf("/readyz while draining: %d %v; want 503 with serving \"shutting down\"", status, body)
		}
		return nil
	})
	// Still serving, and asking the client to take its next request elsewhere.
	resp, err := http.Post(s.URL+"/query", "application/json", bytes.NewBufferString(`{"query":"{ __typename }"}`))
	if err != nil {
		t.Fatalf("a request while draining: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if elapsed := time.Since(began); elapsed >= delay {
		t.Fatalf("the checks took %v, past the drain's delay of %v; the test cannot tell", elapsed, delay)
	}
	var answer struct {
		Data struct {
			Typename string `json:"__typename"`
		}
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &answer) != nil || answer.Data.Typename != "Query" {
		t.Errorf("a request while draining: %d %s; want 200 with data", resp.StatusCode, body)
	}
	if !resp.Close {
		t.Errorf("an answer while draining has Connection %q; want close", resp.Header.Get("Connection"))
	}

	code, reason, err := ws.AwaitClose(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if code != graph.CloseServiceRestart {
		t.Errorf("websocket closed with %d %q; want %d (Service Restart)", code, reason, graph.CloseServiceRestart)
	}
	if elapsed := time.Since(began); elapsed < delay {
		t.Errorf("websocket closed %v into the drain; want after its delay of %v", elapsed, delay)
	}
	if err := <-drained; err != nil {
		t.Errorf("Drain: %v", err)
	}
}
