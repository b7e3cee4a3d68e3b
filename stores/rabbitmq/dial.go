package rabbitmq

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

const (
	// dialTimeout bounds the TCP connect and the AMQP handshake of every dial, also when the
	// caller's context has no deadline: a broker that accepts connections but never answers
	// must not hang a Publish or a consumer's reconnect loop.
	dialTimeout = 10 * time.Second
	// heartbeat is the interval we ask for. amqp091 drops a connection after three silent
	// intervals, so a connection whose peer vanished without a FIN fails within 30s.
	heartbeat = 10 * time.Second
	// closeTimeout bounds the close handshake of a connection we are done with.
	closeTimeout = 5 * time.Second
)

// dial opens an AMQP connection named name (the name shows in the management UI), honouring
// ctx and dialTimeout for the TCP connect and the handshake.
func dial(ctx context.Context, url, name string) (*amqp.Connection, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()

	var (
		mu sync.Mutex
		nc net.Conn
	)
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(name)
	cfg := amqp.Config{
		Heartbeat:  heartbeat,
		Properties: props,
		Dial: func(network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// The deadline bounds the handshake; amqp091 clears it once the connection is open.
			if err := c.SetDeadline(deadline); err != nil {
				c.Close()
				return nil, err
			}
			mu.Lock()
			nc = c
			mu.Unlock()
			return c, nil
		},
	}
	// A cancelled ctx interrupts the handshake by moving the socket's deadline to the past.
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if nc != nil {
			nc.SetDeadline(time.Unix(1, 0))
		}
	})
	conn, err := amqp.DialConfig(url, cfg)
	if !stop() && err == nil {
		// ctx ended just as the handshake finished: the past deadline may have landed on the
		// open connection, which is then unusable.
		closeConn(conn, 0)
		return nil, fmt.Errorf("dial: %w", context.Cause(ctx))
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("dial: %w (%w)", context.Cause(ctx), err)
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	return conn, nil
}

// closeConn closes conn, giving the broker timeout to answer the close handshake; a zero
// timeout abandons the connection at once. An error means the connection is closed anyway.
func closeConn(conn *amqp.Connection, timeout time.Duration) {
	conn.CloseDeadline(time.Now().Add(timeout))
}

// Ping dials url and closes the connection, for readiness checks. It returns an error when
// the broker cannot be reached or refuses the credentials.
func Ping(ctx context.Context, url string) error {
	conn, err := dial(ctx, url, "flashsale ping")
	if err != nil {
		return fmt.Errorf("rabbitmq: ping: %w", err)
	}
	closeConn(conn, closeTimeout)
	return nil
}
