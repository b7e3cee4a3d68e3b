package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// rushOf returns a Rush that is busy past threshold requests, with a short poll, and an
// HTTP server whose requests block until release is closed.
func rushOf(t *testing.T, threshold int64, maxHold time.Duration) (r *Rush, srv *httptest.Server, release chan struct{}, entered chan struct{}) {
	t.Helper()
	r = &Rush{threshold: threshold, maxHold: maxHold, poll: time.Millisecond}
	release, entered = make(chan struct{}), make(chan struct{}, 100)
	srv = httptest.NewServer(r.Track(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		entered <- struct{}{}
		<-release
	})))
	t.Cleanup(srv.Close)
	return r, srv, release, entered
}

// inFlight starts n requests to srv (with the header h set, if any) and waits until each is
// in the handler; the returned func waits for their answers.
func inFlight(t *testing.T, srv *httptest.Server, entered chan struct{}, n int, h string) (wait func()) {
	t.Helper()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			if h != "" {
				req.Header.Set(h, "websocket")
			}
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		})
	}
	for range n {
		select {
		case <-entered:
		case <-time.After(5 * time.Second):
			t.Fatal("requests did not reach the handler")
		}
	}
	return wg.Wait
}

func TestRushCountsRequestsInFlightButNotWebsockets(t *testing.T) {
	t.Parallel()
	r, srv, release, entered := rushOf(t, 2, time.Second)
	waitWS := inFlight(t, srv, entered, 5, "Upgrade")
	if r.Busy() {
		t.Errorf("busy with 5 websockets open; want them not counted")
	}
	wait := inFlight(t, srv, entered, 3, "")
	if !r.Busy() {
		t.Errorf("not busy with 3 requests in flight over a threshold of 2")
	}
	close(release)
	wait()
	waitWS()
	if r.Busy() {
		t.Errorf("still busy once every request was answered")
	}
}

func TestGiveWayWaitsForTheRushAndNoLongerThanItsHold(t *testing.T) {
	t.Parallel()

	t.Run("not busy: no wait", func(t *testing.T) {
		t.Parallel()
		r := &Rush{threshold: 1, maxHold: time.Hour, poll: time.Millisecond}
		start := time.Now()
		r.GiveWay(t.Context())
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("GiveWay took %v with nothing in flight; want it to return at once", d)
		}
	})

	t.Run("the rush ends", func(t *testing.T) {
		t.Parallel()
		r, srv, release, entered := rushOf(t, 1, time.Hour)
		wait := inFlight(t, srv, entered, 2, "")
		done := make(chan struct{})
		go func() { r.GiveWay(t.Context()); close(done) }()
		select {
		case <-done:
			t.Fatal("GiveWay returned during the rush; want it to wait")
		case <-time.After(50 * time.Millisecond):
		}
		close(release)
		wait()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("GiveWay still waiting after the rush ended")
		}
	})

	t.Run("the hold runs out", func(t *testing.T) {
		t.Parallel()
		r, srv, release, entered := rushOf(t, 1, 30*time.Millisecond)
		wait := inFlight(t, srv, entered, 2, "")
		defer func() { close(release); wait() }()
		start := time.Now()
		r.GiveWay(t.Context())
		if d := time.Since(start); d < 30*time.Millisecond || d > 2*time.Second {
			t.Errorf("GiveWay waited %v during an endless rush; want about its 30ms hold", d)
		}
	})

	t.Run("ctx ends", func(t *testing.T) {
		t.Parallel()
		r, srv, release, entered := rushOf(t, 1, time.Hour)
		wait := inFlight(t, srv, entered, 2, "")
		defer func() { close(release); wait() }()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		start := time.Now()
		r.GiveWay(ctx)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("GiveWay waited %v after its ctx ended; want it to return", d)
		}
	})
}
