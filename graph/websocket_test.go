package graph

import (
	"context"
	"io"
	"testing"

	"github.com/flashsale/flashsale"
)

// fakeConn records the close it is asked for.
type fakeConn struct {
	code   int
	reason string
}

func (c *fakeConn) Close() error                        { return nil }
func (c *fakeConn) NextReader() (int, io.Reader, error) { return 0, nil, io.EOF }
func (c *fakeConn) WriteJSON(any) error                 { return nil }
func (c *fakeConn) Subprotocol() string                 { return "graphql-transport-ws" }
func (c *fakeConn) WriteClose(code int, reason string) error {
	c.code, c.reason = code, reason
	return nil
}

// gqlgen closes a connection whose context ended with 1000; a connection whose session ended
// closes with CloseSessionEnded and the session's reason instead, and every other close is
// left as it is.
func TestASocketWhoseSessionEndedClosesWith4403(t *testing.T) {
	t.Parallel()
	ended, end := context.WithCancelCause(context.Background())
	end(flashsale.ErrSignedOut)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name       string
		session    context.Context // nil: an anonymous socket
		code       int
		wantCode   int
		wantReason string
	}{
		{"session ended", ended, 1000, CloseSessionEnded, flashsale.ErrSignedOut.Message},
		{"session ended, protocol error", ended, 1002, 1002, "terminated"},
		{"closed by the client", cancelled, 1000, 1000, "terminated"},
		{"live session", context.Background(), 1000, 1000, "terminated"},
		{"anonymous", nil, 1000, 1000, "terminated"},
	}
	for _, tt := range tests {
		s := &socketSession{}
		if tt.session != nil {
			s.set(tt.session, func() {})
		}
		fake := &fakeConn{}
		c := &sessionConn{WebsocketConn: fake, session: s}
		c.WriteClose(tt.code, "terminated")
		if fake.code != tt.wantCode || fake.reason != tt.wantReason {
			t.Errorf("%s: closed with %d %q; want %d %q", tt.name, fake.code, fake.reason, tt.wantCode, tt.wantReason)
		}
	}
}
