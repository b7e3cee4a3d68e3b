package graph

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
)

// CloseServiceRestart is the close code of a websocket whose replica is going away (RFC 6455's
// 1012 Service Restart). graphql-ws clients, like browsers' reconnecting wrappers, take it
// for a passing condition and reconnect, to a replica that stays, and resubscribe; a
// subscription's first message is the current value, so nothing is missed.
const CloseServiceRestart = 1012

// errDraining is the readiness failure of a draining replica.
var errDraining = errors.New("shutting down")

// Drain takes a replica out of service before it stops, in two steps. Begin makes /readyz
// fail, so that load balancers stop sending it new connections, and makes every answer ask
// its client to close the connection, so that kept-alive connections move to the other
// replicas after their next request instead of being cut. CloseSockets, once the load
// balancers have noticed, closes every websocket with CloseServiceRestart. Requests in flight
// are the http.Server's to wait for (Shutdown).
type Drain struct {
	draining atomic.Bool

	sockets      sync.WaitGroup
	socketsCtx   context.Context
	closeSockets context.CancelFunc
}

// NewDrain returns a Drain of a replica in service.
func NewDrain() *Drain {
	d := &Drain{}
	d.socketsCtx, d.closeSockets = context.WithCancel(context.Background())
	return d
}

// Begin takes the replica out of service; calling it again does nothing.
func (d *Drain) Begin() { d.draining.Store(true) }

// Draining reports whether Begin was called.
func (d *Drain) Draining() bool { return d != nil && d.draining.Load() }

// Check is the readiness check of a replica that may be draining: it fails once Begin was
// called.
func (d *Drain) Check(context.Context) error {
	if d.Draining() {
		return errDraining
	}
	return nil
}

// Serve asks each client to close its connection after the answer while the replica drains
// (Connection: close, which the http.Server honours too): the client's next request opens a
// connection that the load balancer sends elsewhere. Closing idle connections instead would
// race a client sending a request on one, and a POST is not retried.
func (d *Drain) Serve(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Draining() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// CloseSockets closes every websocket, and any opened afterwards, with CloseServiceRestart,
// and waits until their handlers have returned or ctx ends. It begins the drain if Begin was
// not called.
func (d *Drain) CloseSockets(ctx context.Context) error {
	d.Begin()
	d.closeSockets()
	done := make(chan struct{})
	go func() {
		d.sockets.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// socket registers a websocket being served and returns its context, which ends with ctx or
// when CloseSockets is called, and the function to call when its handler returns.
func (d *Drain) socket(ctx context.Context) (context.Context, func()) {
	if d == nil {
		return ctx, func() {}
	}
	d.sockets.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(d.socketsCtx, cancel)
	return ctx, func() {
		stop()
		cancel()
		d.sockets.Done()
	}
}

// closing reports whether CloseSockets was called.
func (d *Drain) closing() bool { return d != nil && d.socketsCtx.Err() != nil }
