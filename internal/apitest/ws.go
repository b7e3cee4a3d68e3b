package apitest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The websocket subprotocols /query speaks.
const (
	// TransportWS is graphql-transport-ws, the protocol of the graphql-ws library.
	TransportWS = "graphql-transport-ws"
	// LegacyWS is graphql-ws, the protocol of Apollo's older subscriptions-transport-ws.
	LegacyWS = "graphql-ws"
)

// ErrCompleted is what Subscription.Next returns once the server has completed the operation.
var ErrCompleted = errors.New("apitest: the operation is complete")

// wsTimeout bounds the handshake and each write.
const wsTimeout = 15 * time.Second

// WSOption changes how DialWS connects.
type WSOption func(*wsOptions)

type wsOptions struct {
	protocol string
	header   http.Header
}

// WithProtocol picks the subprotocol (default TransportWS).
func WithProtocol(p string) WSOption { return func(o *wsOptions) { o.protocol = p } }

// WithHeader adds headers to the upgrade request (an X-Forwarded-For, say).
func WithHeader(h http.Header) WSOption { return func(o *wsOptions) { o.header = h } }

// WS is a GraphQL websocket client of /query, as a browser's would be, speaking either
// subprotocol. It reads in the background, answers pings, and hands each operation's messages
// to its Subscription.
type WS struct {
	conn     *websocket.Conn
	protocol string

	mu      sync.Mutex
	subs    map[string]*Subscription
	nextID  int
	stalled bool  // set by StopReading: the reader takes no more messages
	err     error // why the reader stopped

	closing    chan struct{} // closed by Close and CloseNow
	closeOnce  sync.Once
	readerDone chan struct{}
}

// Subscription is one operation sent over a WS: a subscription, or a query or mutation
// answered once.
type Subscription struct {
	ID    string
	ws    *WS
	msgs  chan Message // closed when the operation completes or the socket goes
	ended error        // why msgs was closed; written before the close
}

// Message is one result of an operation: its data, or its errors.
type Message struct {
	Data   json.RawMessage
	Errors []Error
}

// Codes returns the extensions.code of every error, in order.
func (m Message) Codes() []string {
	return (&Response{Errors: m.Errors}).Codes()
}

// Decode decodes the message's data into v.
func (m Message) Decode(v any) error {
	if len(m.Errors) > 0 {
		return fmt.Errorf("apitest: message has errors %v: %+v", m.Codes(), m.Errors)
	}
	return json.Unmarshal(m.Data, v)
}

// wsFrame is a message of either protocol: they differ in type names, not in shape.
type wsFrame struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// DialWS connects to the server's /query and completes the connection_init handshake, with
// the access token in its payload unless it is "". The socket is closed when the test ends.
func (s *Server) DialWS(t testing.TB, token string, opts ...WSOption) *WS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wsTimeout)
	defer cancel()
	ws, err := DialWS(ctx, s.URL, token, opts...)
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	t.Cleanup(ws.Close)
	return ws
}

// DialWS connects to baseURL's /query as Server.DialWS does; the caller closes the socket.
// It fails if the server refuses the connection_init (a bad token, say).
func DialWS(ctx context.Context, baseURL, token string, opts ...WSOption) (*WS, error) {
	o := wsOptions{protocol: TransportWS}
	for _, opt := range opts {
		opt(&o)
	}
	url := "ws" + strings.TrimPrefix(baseURL, "http") + "/query"
	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{o.protocol}, HTTPHeader: o.header})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return nil, fmt.Errorf("dial %s (status %d): %w", url, status, err)
	}
	if got := conn.Subprotocol(); got != o.protocol {
		conn.CloseNow()
		return nil, fmt.Errorf("dial %s: got subprotocol %q; want %q", url, got, o.protocol)
	}
	conn.SetReadLimit(64 << 20)
	w := &WS{conn: conn, protocol: o.protocol, subs: map[string]*Subscription{},
		closing: make(chan struct{}), readerDone: make(chan struct{})}
	if err := w.handshake(ctx, token); err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("connection_init on %s: %w", url, err)
	}
	go w.read()
	return w, nil
}

func (w *WS) handshake(ctx context.Context, token string) error {
	payload := map[string]string{}
	if token != "" {
		payload["Authorization"] = "Bearer " + token
	}
	if err := w.send(ctx, "connection_init", "", payload); err != nil {
		return err
	}
	for {
		_, data, err := w.conn.Read(ctx)
		if err != nil {
			return fmt.Errorf("no connection_ack: %w", err)
		}
		var f wsFrame
		if err := json.Unmarshal(data, &f); err != nil {
			return fmt.Errorf("unreadable message %q: %w", data, err)
		}
		switch f.Type {
		case "connection_ack":
			return nil
		case "connection_error":
			return fmt.Errorf("connection_error %s", f.Payload)
		case "ping":
			if err := w.send(ctx, "pong", "", f.Payload); err != nil {
				return err
			}
		}
	}
}

// Subscribe sends an operation (a subscription, or a query or mutation answered once) and
// returns it, to read its messages from. It fails only if the socket cannot be written.
func (w *WS) Subscribe(query string, vars map[string]any) (*Subscription, error) {
	w.mu.Lock()
	w.nextID++
	s := &Subscription{ID: strconv.Itoa(w.nextID), ws: w, msgs: make(chan Message, 64)}
	if w.err != nil {
		w.mu.Unlock()
		return nil, fmt.Errorf("apitest: subscribe on a closed socket: %w", w.err)
	}
	w.subs[s.ID] = s
	w.mu.Unlock()
	typ := "subscribe"
	if w.protocol == LegacyWS {
		typ = "start"
	}
	ctx, cancel := context.WithTimeout(context.Background(), wsTimeout)
	defer cancel()
	if err := w.send(ctx, typ, s.ID, map[string]any{"query": query, "variables": vars}); err != nil {
		return nil, err
	}
	return s, nil
}

// MustSubscribe is Subscribe failing the test on error.
func (w *WS) MustSubscribe(t testing.TB, query string, vars map[string]any) *Subscription {
	t.Helper()
	s, err := w.Subscribe(query, vars)
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	return s
}

// Next returns the operation's next message. Its error is ErrCompleted once the server has
// completed the operation, the socket's error if it went, or ctx's.
func (s *Subscription) Next(ctx context.Context) (Message, error) {
	select {
	case m, ok := <-s.msgs:
		if !ok {
			return Message{}, s.ended
		}
		return m, nil
	case <-ctx.Done():
		return Message{}, fmt.Errorf("apitest: no message on operation %s: %w", s.ID, ctx.Err())
	}
}

// Stop asks the server to end the operation (complete, or stop in the legacy protocol).
func (s *Subscription) Stop() error {
	typ := "complete"
	if s.ws.protocol == LegacyWS {
		typ = "stop"
	}
	ctx, cancel := context.WithTimeout(context.Background(), wsTimeout)
	defer cancel()
	return s.ws.send(ctx, typ, s.ID, nil)
}

// StopReading stops taking messages off the socket, after the one the reader may already be
// waiting for, as a client that has stalled would. Messages back up in the kernel's buffers
// and then in the server. Close and CloseNow still work.
func (w *WS) StopReading() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stalled = true
}

// Close closes the socket with a close handshake and waits for the reader to end. Calling it
// again does nothing.
func (w *WS) Close() {
	w.closeOnce.Do(func() {
		close(w.closing)
		if err := w.conn.Close(websocket.StatusNormalClosure, ""); err != nil {
			w.conn.CloseNow()
		}
	})
	<-w.readerDone
}

// AwaitClose waits until the socket goes (or ctx ends) and returns the code and reason of the
// server's close frame: code -1 if it went without one (the TCP connection dropped, or this
// side closed it).
func (w *WS) AwaitClose(ctx context.Context) (code int, reason string, err error) {
	select {
	case <-w.readerDone:
	case <-ctx.Done():
		return 0, "", fmt.Errorf("apitest: the server did not close the socket: %w", ctx.Err())
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var ce websocket.CloseError
	if errors.As(w.err, &ce) {
		return int(ce.Code), ce.Reason, nil
	}
	return -1, "", nil
}

// CloseNow drops the TCP connection without a close handshake, as a client that loses its
// network would, and waits for the reader to end.
func (w *WS) CloseNow() {
	w.closeOnce.Do(func() {
		close(w.closing)
		w.conn.CloseNow()
	})
	<-w.readerDone
}

func (w *WS) send(ctx context.Context, typ, id string, payload any) error {
	f := wsFrame{ID: id, Type: typ}
	if payload != nil {
		b, err := json.Marshal(payload)
		if err != nil {
			return fmt.Errorf("apitest: encode %s payload: %w", typ, err)
		}
		f.Payload = b
	}
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("apitest: encode %s: %w", typ, err)
	}
	if err := w.conn.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("apitest: send %s: %w", typ, err)
	}
	return nil
}

// read hands each message to its operation until the socket goes, then ends every operation.
func (w *WS) read() {
	defer close(w.readerDone)
	err := w.readLoop()
	w.mu.Lock()
	w.err = err
	subs := w.subs
	w.subs = map[string]*Subscription{}
	w.mu.Unlock()
	for _, s := range subs {
		s.end(fmt.Errorf("apitest: operation %s ended with the socket: %w", s.ID, err))
	}
}

func (w *WS) readLoop() error {
	for {
		w.mu.Lock()
		stalled := w.stalled
		w.mu.Unlock()
		if stalled {
			<-w.closing // a stalled client stays stalled until it is closed
			return errors.New("apitest: socket closed")
		}
		_, data, err := w.conn.Read(context.Background())
		if err != nil {
			return err
		}
		if err := w.dispatch(data); err != nil {
			return err
		}
	}
}

func (w *WS) dispatch(data []byte) error {
	var f wsFrame
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("apitest: unreadable message %q: %w", data, err)
	}
	switch f.Type {
	case "next", "data":
		var r struct {
			Data   json.RawMessage `json:"data"`
			Errors []Error         `json:"errors"`
		}
		if err := json.Unmarshal(f.Payload, &r); err != nil {
			return fmt.Errorf("apitest: unreadable %s payload %q: %w", f.Type, f.Payload, err)
		}
		return w.deliver(f.ID, Message{Data: r.Data, Errors: r.Errors})
	case "error":
		// An array of errors; older servers of the legacy protocol send one object.
		var errs []Error
		if err := json.Unmarshal(f.Payload, &errs); err != nil {
			var one Error
			if err := json.Unmarshal(f.Payload, &one); err != nil {
				return fmt.Errorf("apitest: unreadable error payload %q: %w", f.Payload, err)
			}
			errs = []Error{one}
		}
		return w.deliver(f.ID, Message{Errors: errs})
	case "complete":
		w.mu.Lock()
		s := w.subs[f.ID]
		delete(w.subs, f.ID)
		w.mu.Unlock()
		if s != nil {
			s.end(ErrCompleted)
		}
	case "ping":
		ctx, cancel := context.WithTimeout(context.Background(), wsTimeout)
		defer cancel()
		return w.send(ctx, "pong", "", f.Payload)
	case "connection_error":
		return fmt.Errorf("apitest: connection_error %s", f.Payload)
	}
	return nil // pong, ka (the legacy keep-alive), a repeated connection_ack
}

// deliver queues m for its operation, waiting while the test has not read the ones before
// (the socket then backs up, as a browser's would not, but tests read what they ask for).
func (w *WS) deliver(id string, m Message) error {
	w.mu.Lock()
	s := w.subs[id]
	w.mu.Unlock()
	if s == nil {
		return fmt.Errorf("apitest: message for unknown operation %q", id)
	}
	select {
	case s.msgs <- m:
		return nil
	case <-w.closing:
		return errors.New("apitest: socket closed")
	}
}

// end closes the operation's messages; Next then returns why.
func (s *Subscription) end(why error) {
	s.ended = why
	close(s.msgs)
}
