package graph

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/flashsale/flashsale"
)

// CloseSessionEnded is the close code of a websocket whose viewer's session ended under it:
// the access token expired, or the sign-in was revoked (logout, a reused refresh token, a
// role or password change). It is graphql-transport-ws's 4403 Forbidden, the code this API
// also refuses a bad connection_init with: the graphql-ws client reconnects after it, calling
// its connectionParams again, which is where a client puts a freshly refreshed token. The
// close reason says which of the two happened.
const CloseSessionEnded = 4403

// sessionWebsocket is gqlgen's websocket transport, with each connection of a signed-in
// viewer living in the viewer's session (websocketInit puts it there) and closed with
// CloseSessionEnded when it ends. gqlgen closes a connection whose context ends with 1000
// Normal Closure, which a client takes for a server that had nothing more to say; the
// connection is therefore wrapped to send our code instead.
//
// A replica that drains (Drain) closes its websockets with CloseServiceRestart the same way.
type sessionWebsocket struct {
	transport.Websocket
	drain *Drain // nil: the connections outlive no drain
}

var _ graphql.Transport = sessionWebsocket{}

// Do serves one websocket.
func (t sessionWebsocket) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	s := &socketSession{}
	defer s.stop()
	ctx, done := t.drain.socket(r.Context())
	defer done()
	ws := t.Websocket
	ws.Implementation = sessionImplementation{inner: ws.Implementation, session: s, drain: t.drain}
	ws.Do(w, r.WithContext(context.WithValue(ctx, socketSessionKey{}, s)), exec)
}

type socketSessionKey struct{}

// socketSession is what the connection_init learns (the session's context) and what the
// connection's close needs (why the session ended).
type socketSession struct {
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
}

func (s *socketSession) set(ctx context.Context, cancel context.CancelFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctx, s.cancel = ctx, cancel
}

// ended returns why the session ended, or nil if it has not (or there is none).
func (s *socketSession) ended() *flashsale.Error {
	s.mu.Lock()
	ctx := s.ctx
	s.mu.Unlock()
	var e *flashsale.Error
	if ctx == nil || !errors.As(context.Cause(ctx), &e) {
		return nil
	}
	return e
}

func (s *socketSession) stop() {
	s.mu.Lock()
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// inSession returns ctx ended with v's session (AuthService.SessionContext), and tells
// sessionWebsocket's connection of it.
func inSession(ctx context.Context, auth flashsale.AuthService, v flashsale.Viewer) context.Context {
	ctx, cancel := auth.SessionContext(ctx, v)
	if s, ok := ctx.Value(socketSessionKey{}).(*socketSession); ok {
		s.set(ctx, cancel)
	} else {
		// Served without sessionWebsocket's Do: nothing would call cancel, but the session's
		// context also ends with the request's.
		context.AfterFunc(ctx, cancel)
	}
	return ctx
}

// sessionImplementation accepts websockets as its inner implementation does (gqlgen's
// coder/websocket one when nil), wrapped in sessionConn.
type sessionImplementation struct {
	inner   transport.WebsocketImplementation
	session *socketSession
	drain   *Drain
}

func (i sessionImplementation) Accept(w http.ResponseWriter, r *http.Request, o transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	inner := i.inner
	if inner == nil {
		inner = transport.CoderWebsocketImplementation{}
	}
	c, err := inner.Accept(w, r, o)
	if err != nil {
		return nil, err
	}
	return &sessionConn{WebsocketConn: c, session: i.session, drain: i.drain}, nil
}

// sessionConn closes with CloseSessionEnded, and the reason, when the session has ended, and
// with CloseServiceRestart when the replica drains.
type sessionConn struct {
	transport.WebsocketConn
	session *socketSession
	drain   *Drain
}

// WriteClose replaces the normal closure gqlgen sends when a connection's context ends.
func (c *sessionConn) WriteClose(code int, reason string) error {
	if code == transport.WebsocketCloseNormalClosure {
		if e := c.session.ended(); e != nil {
			code, reason = CloseSessionEnded, e.Message
		} else if c.drain.closing() {
			code, reason = CloseServiceRestart, "service restart: reconnect"
		}
	}
	return c.WebsocketConn.WriteClose(code, reason)
}

// SetReadLimit passes the transport's read limit on.
func (c *sessionConn) SetReadLimit(limit int64) {
	if l, ok := c.WebsocketConn.(transport.WebsocketReadLimiter); ok {
		l.SetReadLimit(limit)
	}
}

// SetReadDeadline passes the transport's pong deadline on.
func (c *sessionConn) SetReadDeadline(t time.Time) error {
	if d, ok := c.WebsocketConn.(transport.WebsocketReadDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return nil
}
