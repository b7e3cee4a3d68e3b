package redis

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale"
)

// Revocations carries revoked sign-ins (refresh-token families) between API replicas, so that
// each refuses their access tokens and closes their websockets at once rather than when the
// tokens expire. A revocation is published on a channel for the replicas listening now, and
// kept for the window (the access tokens' lifetime) in a sorted set that a replica reads
// whenever its subscription is confirmed, first or after a reconnect: what was published
// while it was not listening is not missed.
type Revocations struct {
	client  goredis.UniversalClient
	channel string
	key     string
	window  time.Duration
	log     *slog.Logger
	now     func() time.Time

	ps     *goredis.PubSub
	cancel context.CancelFunc
	done   chan struct{}
}

var _ flashsale.RevocationBus = (*Revocations)(nil)

// NewRevocations returns a bus over prefix+"auth:revocations" that remembers a revocation for
// window. Listen starts hearing them.
func NewRevocations(client goredis.UniversalClient, prefix string, window time.Duration, log *slog.Logger) *Revocations {
	return &Revocations{client: client, channel: prefix + "auth:revocations", key: prefix + "{auth}:revoked",
		window: window, log: log, now: time.Now}
}

// PublishRevoked records the families and announces them, in one round trip.
func (r *Revocations) PublishRevoked(ctx context.Context, families []string) error {
	now := r.now()
	members := make([]goredis.Z, len(families))
	for i, f := range families {
		members[i] = goredis.Z{Score: float64(now.UnixMilli()), Member: f}
	}
	pipe := r.client.Pipeline()
	pipe.ZAdd(ctx, r.key, members...)
	pipe.ZRemRangeByScore(ctx, r.key, "-inf", strconv.FormatInt(now.Add(-r.window).UnixMilli(), 10))
	pipe.PExpire(ctx, r.key, r.window)
	pipe.Publish(ctx, r.channel, strings.Join(families, ","))
	_, err := pipe.Exec(ctx)
	return err
}

// Listen subscribes in the background and calls heard with the families revoked anywhere
// (this process's own included): those of each message, and on every confirmed subscription
// those of the last window. Close ends it.
func (r *Revocations) Listen(heard func(families []string)) {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	r.ps = r.client.Subscribe(ctx, r.channel)
	go r.run(ctx, heard)
}

// Close ends the subscription started by Listen.
func (r *Revocations) Close() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.ps.Close() // a Receive blocked on the connection does not watch its context
	<-r.done
}

func (r *Revocations) run(ctx context.Context, heard func([]string)) {
	defer close(r.done)
	failures := 0
	for {
		msg, err := r.ps.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// go-redis reconnects and subscribes again on the next Receive; the recent
			// revocations are read again once it confirms.
			failures++
			if failures == 1 {
				r.log.Warn("revocations: subscription lost; sign-ins revoked on other replicas are heard of once it returns", "err", err)
			}
			if !pauseBeforeResubscribing(ctx, failures) {
				return
			}
			continue
		}
		failures = 0
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				r.catchUp(ctx, heard)
			}
		case *goredis.Message:
			if families := strings.Split(m.Payload, ","); len(families) > 0 {
				heard(families)
			}
		}
	}
}

// catchUp hears the revocations of the last window, which a replica that was not listening
// may have missed.
func (r *Revocations) catchUp(ctx context.Context, heard func([]string)) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	since := strconv.FormatInt(r.now().Add(-r.window).UnixMilli(), 10)
	families, err := r.client.ZRangeByScore(ctx, r.key, &goredis.ZRangeBy{Min: since, Max: "+inf"}).Result()
	if err != nil {
		r.log.Warn("revocations: read the recent ones", "err", err)
		return
	}
	if len(families) > 0 {
		heard(families)
	}
}
