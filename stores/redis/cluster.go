package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// On a Redis Cluster, a pool's slot can move between nodes (resharding, a failover) while
// buyers buy. While its keys are split between the two nodes, a script that needs all of them
// is refused with TRYAGAIN; a client with an old slot map gets MOVED or ASK; a cluster that
// has lost a master answers CLUSTERDOWN until a replica takes over. In every case the command
// was not run, so it is safe to send again, and the go-redis client already follows a few
// redirects and retries at once. A move of a hot pool's keys takes longer than those few
// tries, though, so the scripts are tried again here, with backoff, for up to slotMoveWait.
//
// A retried script can never take units twice: only refusals that ran nothing are retried,
// and the reservation script itself answers a resent order with the hold it already made.
const (
	slotMoveWait     = 3 * time.Second
	slotMoveBackoff  = 2 * time.Millisecond
	slotMoveMaxPause = 100 * time.Millisecond
)

// slotMoving reports whether err is a cluster's refusal to run a command while a slot moves
// or a master fails over: the command did nothing and may be sent again.
func slotMoving(err error) bool {
	if err == nil {
		return false
	}
	if _, ok := goredis.IsMovedError(err); ok {
		return true
	}
	if _, ok := goredis.IsAskError(err); ok {
		return true
	}
	return goredis.IsTryAgainError(err) || goredis.IsClusterDownError(err)
}

// retrySlotMoves runs op until it returns something other than a slot-moving refusal, for up
// to slotMoveWait or until ctx ends, pausing a little longer each time.
func retrySlotMoves[T any](ctx context.Context, op func() (T, error)) (T, error) {
	v, err := op()
	if !slotMoving(err) {
		return v, err
	}
	deadline := time.Now().Add(slotMoveWait)
	pause := slotMoveBackoff
	for slotMoving(err) && time.Now().Before(deadline) {
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, err
		case <-t.C:
		}
		pause = min(2*pause, slotMoveMaxPause)
		v, err = op()
	}
	return v, err
}

// runScript runs s with keys and args, retrying while the keys' slot moves.
func (inv *Inventory) runScript(ctx context.Context, s *goredis.Script, keys []string, args ...any) (any, error) {
	return retrySlotMoves(ctx, func() (any, error) {
		return s.Run(ctx, inv.client, keys, args...).Result()
	})
}

// Subscribers returns how many connections subscribe to channel, on every node of a Redis
// Cluster: a cluster carries each message to every node, and each subscriber holds its
// subscription on one of them, so PUBSUB NUMSUB of any one node counts only its own.
func Subscribers(ctx context.Context, client goredis.UniversalClient, channel string) (int64, error) {
	cluster, ok := client.(*goredis.ClusterClient)
	if !ok {
		counts, err := client.PubSubNumSub(ctx, channel).Result()
		if err != nil {
			return 0, fmt.Errorf("subscribers of %s: %w", channel, err)
		}
		return counts[channel], nil
	}
	var (
		mu    sync.Mutex
		total int64
		errs  []error
	)
	err := cluster.ForEachShard(ctx, func(ctx context.Context, node *goredis.Client) error {
		counts, err := node.PubSubNumSub(ctx, channel).Result()
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", node.Options().Addr, err))
		}
		total += counts[channel]
		return nil
	})
	if err = errors.Join(append(errs, err)...); err != nil {
		return 0, fmt.Errorf("subscribers of %s: %w", channel, err)
	}
	return total, nil
}
