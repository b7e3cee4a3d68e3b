package redis

import (
	"context"
	"log/slog"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// publisher sends pub/sub messages in the background, many to a pipeline: a checkout that
// waited for two PUBLISH round trips per order spent, in a burst, as long on them as on its
// database write, for messages that only refresh live displays. Publish queues and returns;
// one goroutine sends whatever has queued while the previous pipeline was in flight (no timer,
// so a lone message goes at once). Messages on one channel keep their order; a failed
// pipeline is logged, not retried: pub/sub promises no delivery anyway, and every reader
// of these channels re-reads the state it cares about.
type publisher struct {
	client goredis.UniversalClient
	log    *slog.Logger
	what   string // for the log

	mu      sync.Mutex
	queue   []message
	latest  map[string]int // channel -> index in queue of its coalescable message
	closed  bool
	wake    chan struct{}
	stopped chan struct{}

	warnedAt time.Time // of the last failure logged; the flusher alone touches it
}

type message struct {
	channel string
	payload any // what go-redis accepts: string or []byte
}

// publishTimeout bounds one pipeline.
const publishTimeout = 2 * time.Second

func newPublisher(client goredis.UniversalClient, log *slog.Logger, what string) *publisher {
	p := &publisher{client: client, log: log, what: what, latest: map[string]int{},
		wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	go p.run()
	return p
}

// publish queues a message. With coalesce, a message still queued on the same channel is
// replaced by this one (for channels where only the newest value matters).
func (p *publisher) publish(channel string, payload any, coalesce bool) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	if i, ok := p.latest[channel]; ok && coalesce {
		p.queue[i].payload = payload
	} else {
		if coalesce {
			p.latest[channel] = len(p.queue)
		}
		p.queue = append(p.queue, message{channel: channel, payload: payload})
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default: // the flusher is already due to look
	}
}

func (p *publisher) run() {
	defer close(p.stopped)
	for range p.wake {
		for {
			batch, closed := p.take()
			if len(batch) > 0 {
				p.send(batch)
			}
			if closed {
				return
			}
			if len(batch) == 0 {
				break
			}
		}
	}
}

func (p *publisher) take() ([]message, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	batch := p.queue
	p.queue = nil
	clear(p.latest)
	return batch, p.closed
}

func (p *publisher) send(batch []message) {
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	pipe := p.client.Pipeline()
	for _, m := range batch {
		pipe.Publish(ctx, m.channel, m.payload)
	}
	if _, err := pipe.Exec(ctx); err != nil && time.Since(p.warnedAt) > 10*time.Second {
		p.warnedAt = time.Now()
		p.log.Warn("publish "+p.what+"; live displays miss these updates until the next", "messages", len(batch), "err", err)
	}
}

// close sends what is queued and stops the flusher.
func (p *publisher) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	<-p.stopped
}
