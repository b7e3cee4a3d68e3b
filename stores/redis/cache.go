package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/flashsale/flashsale"
)

// CacheConfig tunes the read cache; zero values take the defaults.
type CacheConfig struct {
	// Prefix namespaces the keys (tests isolate themselves with it).
	Prefix string
	// TTL bounds how long an entry lives. Writes delete their entries at once; the TTL only
	// caps the staleness left by a read that raced a write. Default 5 minutes.
	TTL time.Duration
	// NegativeTTL is how long "no such id" is remembered, so that probing unknown ids cannot
	// hammer PostgreSQL; short, because the id may be created soon after. Default 10s.
	NegativeTTL time.Duration
}

// cache is the cache-aside machinery one entity type's decorator uses: one MGET for a batch,
// the misses to the store in one call, and a singleflight so that a stampede on one cold key
// sends one query. Every key of an entity type shares one hash tag, so an MGET of a whole
// batch stays on one slot of a Redis Cluster.
type cache[K ~int64, V any] struct {
	client   goredis.UniversalClient
	tag      string // "{<prefix>cache:prd}:"
	cfg      CacheConfig
	log      *slog.Logger
	flight   singleflight.Group
	what     string
	warnedAt atomic.Int64 // unix seconds of the last outage warning
	// negatives says whether NOT_FOUND is remembered. Not for orders: an order is looked up
	// while its insert may still be committing, and must be found the moment it commits.
	negatives bool
}

const negative = "-" // the stored form of "no such id"

func newCache[K ~int64, V any](client goredis.UniversalClient, kind, what string, cfg CacheConfig, log *slog.Logger) *cache[K, V] {
	if cfg.TTL == 0 {
		cfg.TTL = 5 * time.Minute
	}
	if cfg.NegativeTTL == 0 {
		cfg.NegativeTTL = 10 * time.Second
	}
	return &cache[K, V]{client: client, tag: "{" + cfg.Prefix + "cache:" + kind + "}:", cfg: cfg, log: log, what: what, negatives: true}
}

func (c *cache[K, V]) key(id K) string { return c.tag + strconv.FormatInt(int64(id), 10) }

// load answers ids from Redis where it can and from find for the rest, in the order of ids.
// A Redis failure is a warning, never an error: reads fall back to the store.
func (c *cache[K, V]) load(ctx context.Context, ids []K, find func(context.Context, []K) ([]*V, []error)) ([]*V, []error) {
	values := make([]*V, len(ids))
	errs := make([]error, len(ids))
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = c.key(id)
	}
	cached, err := c.client.MGet(ctx, keys...).Result()
	if err != nil {
		c.warn(ctx, "read", err)
		cached = make([]any, len(ids))
	}
	var missIDs []K
	var missAt []int
	for i, raw := range cached {
		s, ok := raw.(string)
		switch {
		case !ok:
			missIDs, missAt = append(missIDs, ids[i]), append(missAt, i)
		case s == negative:
			errs[i] = flashsale.Errorf(flashsale.ENOTFOUND, "%s not found", c.what)
		default:
			v := new(V)
			if json.Unmarshal([]byte(s), v) != nil {
				missIDs, missAt = append(missIDs, ids[i]), append(missAt, i)
				continue
			}
			values[i] = v
		}
	}
	if len(missIDs) == 0 {
		return values, errs
	}
	var found []*V
	var findErrs []error
	if len(missIDs) == 1 {
		found, findErrs = c.loadOne(ctx, missIDs[0], find)
	} else {
		found, findErrs = find(ctx, missIDs)
		c.fill(ctx, missIDs, found, findErrs)
	}
	for j, i := range missAt {
		values[i], errs[i] = found[j], findErrs[j]
	}
	return values, errs
}

// loadOne collapses concurrent misses of one key into one store call. The flight reads the
// cache once more before the store: a request whose MGET missed just before another flight
// filled the entry, and which starts its flight just after that one ended, finds the entry
// instead of querying again. The flight fills the cache itself, before it ends, for the
// same reason.
func (c *cache[K, V]) loadOne(ctx context.Context, id K, find func(context.Context, []K) ([]*V, []error)) ([]*V, []error) {
	type result struct {
		v   *V
		err error
	}
	r, _, _ := c.flight.Do(c.key(id), func() (any, error) {
		// Detached: the first caller's cancellation must not fail the others waiting on it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if raw, err := c.client.Get(ctx, c.key(id)).Result(); err == nil {
			if raw == negative {
				return result{nil, flashsale.Errorf(flashsale.ENOTFOUND, "%s not found", c.what)}, nil
			}
			v := new(V)
			if json.Unmarshal([]byte(raw), v) == nil {
				return result{v, nil}, nil
			}
		}
		vs, errs := find(ctx, []K{id})
		c.fill(ctx, []K{id}, vs, errs)
		return result{vs[0], errs[0]}, nil
	})
	res := r.(result)
	return []*V{res.v}, []error{res.err}
}

// fill writes what the store answered: values for their TTL, NOT_FOUND as a short negative
// entry, and nothing for other errors.
func (c *cache[K, V]) fill(ctx context.Context, ids []K, values []*V, errs []error) {
	pipe := c.client.Pipeline()
	n := 0
	for i, id := range ids {
		switch {
		case errs[i] == nil && values[i] != nil:
			b, err := json.Marshal(values[i])
			if err != nil {
				continue
			}
			pipe.Set(ctx, c.key(id), b, c.cfg.TTL)
			n++
		case c.negatives && flashsale.ErrorCode(errs[i]) == flashsale.ENOTFOUND:
			pipe.Set(ctx, c.key(id), negative, c.cfg.NegativeTTL)
			n++
		}
	}
	if n == 0 {
		return
	}
	if _, err := pipe.Exec(ctx); err != nil {
		c.warn(ctx, "write", err)
	}
}

// invalidate deletes ids' entries after a committed write. If Redis is down the entry
// outlives the write by at most TTL; the warning says so.
func (c *cache[K, V]) invalidate(ctx context.Context, ids ...K) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = c.key(id)
	}
	if err := c.client.Del(ctx, keys...).Err(); err != nil {
		c.warn(ctx, "invalidate", err)
	}
}

// warn logs a Redis failure at most once every 10 seconds per entity type.
func (c *cache[K, V]) warn(ctx context.Context, op string, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	now := time.Now().Unix()
	if last := c.warnedAt.Load(); now-last >= 10 && c.warnedAt.CompareAndSwap(last, now) {
		c.log.WarnContext(ctx, fmt.Sprintf("cache %s failed; serving from PostgreSQL", op), "entity", c.what, "err", err)
	}
}
