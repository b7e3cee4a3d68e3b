package flashsale

import (
	"context"
	"net/netip"
)

type contextKey int

const viewerKey contextKey = iota

// NewContextWithViewer returns a context carrying the authenticated viewer.
func NewContextWithViewer(ctx context.Context, v Viewer) context.Context {
	return context.WithValue(ctx, viewerKey, v)
}

// ViewerFromContext returns the request's viewer and whether there is one.
func ViewerFromContext(ctx context.Context) (Viewer, bool) {
	v, ok := ctx.Value(viewerKey).(Viewer)
	return v, ok
}

// RequireViewer returns the viewer, or UNAUTHENTICATED when the request has none.
func RequireViewer(ctx context.Context) (Viewer, error) {
	v, ok := ViewerFromContext(ctx)
	if !ok {
		return Viewer{}, Errorf(EUNAUTHENTICATED, "sign in first")
	}
	return v, nil
}

type clientAddrKey struct{}

// NewContextWithClientAddr returns a context carrying the address of the client that sent
// the request: the peer, or the address a trusted proxy forwarded.
func NewContextWithClientAddr(ctx context.Context, addr netip.Addr) context.Context {
	return context.WithValue(ctx, clientAddrKey{}, addr)
}

// ClientAddrFromContext returns the request's client address and whether there is one.
func ClientAddrFromContext(ctx context.Context) (netip.Addr, bool) {
	a, ok := ctx.Value(clientAddrKey{}).(netip.Addr)
	return a, ok
}

type requestIDKey struct{}

// NewContextWithRequestID returns a context carrying the id of the HTTP request being served
// (its X-Request-Id), which every log line of the request carries.
func NewContextWithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFromContext returns the request's id, or "" outside a request.
func RequestIDFromContext(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
