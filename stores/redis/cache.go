package redis

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/perf/localcache"
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
	// Invalidations, if set, lets products, sales and users keep local copies in this
	// process's memory, dropped everywhere when any process invalidates them.
	Invalidations *Invalidations
	// NoLocalCache keeps no local copies; writes still tell the other processes, whose
	// copies and cached responses must go.
	NoLocalCache bool
}

// cache is the cache-aside machinery one entity type's decorator uses: one MGET for a batch,
// the misses to the store in one call under leases (see leasePrefix), and a singleflight so
// that a stampede on one cold key sends one query. Every key of an entity type shares one hash tag, so an MGET of a whole
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
	kind      string
	bus       *Invalidations          // nil: writes tell no other process
	local     *localcache.Cache[K, V] // nil: every read goes to Redis
	// pausedUntil (unix nanoseconds) is when reads may try Redis again after a failure.
	pausedUntil atomic.Int64
}

// A cache must not be slower than what it caches. A healthy Redis answers in a millisecond;
// a call still waiting after redisBudget is taken for Redis being away (a failover, a
// network that drops packets), and reads leave Redis alone for redisPause, going to the
// store, so that such an outage costs one budget per pause rather than one per request.
// Writes wait longer for their invalidation, which keeps other readers from stale entries.
const (
	redisBudget      = 500 * time.Millisecond
	redisPause       = time.Second
	invalidateBudget = 2 * time.Second
)

// redisUp reports whether reads may try Redis.
func (c *cache[K, V]) redisUp() bool { return time.Now().UnixNano() >= c.pausedUntil.Load() }

// failed notes a Redis failure of op: reads leave Redis alone for redisPause, unless the
// caller itself gave up (ctx ended), which says nothing of Redis.
func (c *cache[K, V]) failed(ctx context.Context, op string, err error) {
	if ctx.Err() == nil {
		c.pausedUntil.Store(time.Now().Add(redisPause).UnixNano())
	}
	c.warn(ctx, op, err)
}

const negative = "-" // the stored form of "no such id"

// A reader that misses claims the entry with a lease before it reads the store, and fills it
// only if it still holds the lease: a write that commits meanwhile deletes the key, lease
// and all, so a value the reader read before that commit can never land in the cache after
// the write's invalidation (the race of plain cache-aside, which left an order PENDING in the
// cache for its whole TTL after it was PAID). Readers that find a lease treat it as a miss.
const (
	leasePrefix = "~lease:"
	// leaseTTL outlives any store read a lease covers (their timeout is 5 seconds), and
	// bounds how long a reader that died holding one keeps others from filling the entry.
	leaseTTL = 10 * time.Second
)

// fillScript writes each value whose key still holds the caller's lease, or, for a value of
// "", drops the caller's lease. KEYS: the entries; ARGV: per key its lease, value and TTL in
// milliseconds. Every key of an entity type shares a hash tag, so this runs on one Redis
// Cluster node.
var fillScript = goredis.NewScript(`
for i, key in ipairs(KEYS) do
  local j = (i - 1) * 3
  if redis.call('GET', key) == ARGV[j + 1] then
    if ARGV[j + 2] == '' then
      redis.call('DEL', key)
    else
      redis.call('SET', key, ARGV[j + 2], 'PX', ARGV[j + 3])
    end
  end
end
return 0
`)

func isLease(s string) bool { return strings.HasPrefix(s, leasePrefix) }

func newCache[K ~int64, V any](client goredis.UniversalClient, kind, what string, cfg CacheConfig, log *slog.Logger) *cache[K, V] {
	if cfg.TTL == 0 {
		cfg.TTL = 5 * time.Minute
	}
	if cfg.NegativeTTL == 0 {
		cfg.NegativeTTL = 10 * time.Second
	}
	return &cache[K, V]{client: client, tag: "{" + cfg.Prefix + "cache:" + kind + "}:", cfg: cfg, log: log, what: what,
		negatives: true, kind: kind}
}

// keepLocal has this entity type's writes heard by every process (when the config has an
// invalidation bus) and, unless the config says NoLocalCache, keeps local copies.
func (c *cache[K, V]) keepLocal() {
	if c.cfg.Invalidations == nil {
		return
	}
	c.bus = c.cfg.Invalidations
	if c.cfg.NoLocalCache {
		return
	}
	local := localcache.New[K, V](c.bus)
	c.bus.register(c.kind, func(ids []int64) {
		keys := make([]K, len(ids))
		for i, id := range ids {
			keys[i] = K(id)
		}
		local.Drop(keys...)
	}, local.Clear)
	c.local = local
}

// peek returns id's local copy, if this process holds one.
func (c *cache[K, V]) peek(id K) (*V, bool) {
	if c.local == nil {
		return nil, false
	}
	return c.local.Get(id)
}

func (c *cache[K, V]) key(id K) string { return c.tag + strconv.FormatInt(int64(id), 10) }

// load answers ids from Redis where it can and from find for the rest, in the order of ids.
// A Redis failure is a warning, never an error: reads fall back to the store.
func (c *cache[K, V]) load(ctx context.Context, ids []K, find func(context.Context, []K) ([]*V, []error)) ([]*V, []error) {
	if c.local == nil {
		return c.loadShared(ctx, ids, find)
	}
	gen := c.local.Generation()
	values := make([]*V, len(ids))
	errs := make([]error, len(ids))
	var sharedIDs []K
	var sharedAt []int
	for i, id := range ids {
		if v, ok := c.local.Get(id); ok {
			values[i] = v
		} else {
			sharedIDs, sharedAt = append(sharedIDs, id), append(sharedAt, i)
		}
	}
	if len(sharedIDs) == 0 {
		return values, errs
	}
	found, findErrs := c.loadShared(ctx, sharedIDs, find)
	for j, i := range sharedAt {
		values[i], errs[i] = found[j], findErrs[j]
		if found[j] != nil && findErrs[j] == nil {
			c.local.Put(sharedIDs[j], found[j], gen)
		}
	}
	return values, errs
}

// loadShared answers ids from Redis, which every process shares, and the store.
func (c *cache[K, V]) loadShared(ctx context.Context, ids []K, find func(context.Context, []K) ([]*V, []error)) ([]*V, []error) {
	values := make([]*V, len(ids))
	errs := make([]error, len(ids))
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = c.key(id)
	}
	if !c.redisUp() {
		return c.loadWithoutRedis(ctx, ids, find)
	}
	rctx, cancel := context.WithTimeout(ctx, redisBudget)
	cached, err := c.client.MGet(rctx, keys...).Result()
	cancel()
	if err != nil {
		c.failed(ctx, "read", err)
		return c.loadWithoutRedis(ctx, ids, find)
	}
	var missIDs []K
	var missAt []int
	for i, raw := range cached {
		s, ok := raw.(string)
		switch {
		case !ok || isLease(s):
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
		leases := c.lease(ctx, missIDs)
		found, findErrs = find(ctx, missIDs)
		c.fill(ctx, missIDs, leases, found, findErrs)
	}
	for j, i := range missAt {
		values[i], errs[i] = found[j], findErrs[j]
	}
	return values, errs
}

// loadWithoutRedis reads the store while Redis is away, a lone id still through loadOne's
// flight, so that a crowd on one page sends one query.
func (c *cache[K, V]) loadWithoutRedis(ctx context.Context, ids []K, find func(context.Context, []K) ([]*V, []error)) ([]*V, []error) {
	if len(ids) == 1 {
		return c.loadOne(ctx, ids[0], find)
	}
	return find(ctx, ids)
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
		if !c.redisUp() {
			vs, errs := find(ctx, []K{id})
			return result{vs[0], errs[0]}, nil
		}
		if raw, err := c.get(ctx, c.key(id)); err == nil && !isLease(raw) {
			if raw == negative {
				return result{nil, flashsale.Errorf(flashsale.ENOTFOUND, "%s not found", c.what)}, nil
			}
			v := new(V)
			if json.Unmarshal([]byte(raw), v) == nil {
				return result{v, nil}, nil
			}
		}
		leases := c.lease(ctx, []K{id})
		vs, errs := find(ctx, []K{id})
		c.fill(ctx, []K{id}, leases, vs, errs)
		return result{vs[0], errs[0]}, nil
	})
	res := r.(result)
	return []*V{res.v}, []error{res.err}
}

// get reads one entry within redisBudget; redis.Nil is a miss, not a failure.
func (c *cache[K, V]) get(ctx context.Context, key string) (string, error) {
	rctx, cancel := context.WithTimeout(ctx, redisBudget)
	defer cancel()
	raw, err := c.client.Get(rctx, key).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		c.failed(ctx, "read", err)
	}
	return raw, err
}

// lease claims the missing entries of ids before the store is read, and returns the lease
// of each id ("" where another reader holds one, or Redis failed: no fill then).
func (c *cache[K, V]) lease(ctx context.Context, ids []K) []string {
	leases := make([]string, len(ids))
	if !c.redisUp() {
		return leases
	}
	rctx, cancel := context.WithTimeout(ctx, redisBudget)
	defer cancel()
	pipe := c.client.Pipeline()
	cmds := make([]*goredis.BoolCmd, len(ids))
	for i, id := range ids {
		leases[i] = leasePrefix + rand.Text()
		cmds[i] = pipe.SetNX(rctx, c.key(id), leases[i], leaseTTL)
	}
	if _, err := pipe.Exec(rctx); err != nil && !errors.Is(err, goredis.Nil) {
		c.failed(ctx, "lease", err)
	}
	for i, cmd := range cmds {
		if ok, err := cmd.Result(); err != nil || !ok {
			leases[i] = ""
		}
	}
	return leases
}

// fill writes what the store answered where the reader still holds its lease: values for
// their TTL, NOT_FOUND as a short negative entry; for other errors it drops the lease.
func (c *cache[K, V]) fill(ctx context.Context, ids []K, leases []string, values []*V, errs []error) {
	var keys []string
	var args []any
	for i, id := range ids {
		if leases[i] == "" {
			continue
		}
		value, ttl := "", time.Duration(0)
		switch {
		case errs[i] == nil && values[i] != nil:
			if b, err := json.Marshal(values[i]); err == nil {
				value, ttl = string(b), c.cfg.TTL
			}
		case c.negatives && flashsale.ErrorCode(errs[i]) == flashsale.ENOTFOUND:
			value, ttl = negative, c.cfg.NegativeTTL
		}
		keys = append(keys, c.key(id))
		args = append(args, leases[i], value, ttl.Milliseconds())
	}
	if len(keys) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, redisBudget)
	defer cancel()
	if err := fillScript.Run(rctx, c.client, keys, args...).Err(); err != nil {
		c.failed(ctx, "write", err)
	}
}

// invalidate deletes ids' entries after a committed write. If Redis is down the entry
// outlives the write by at most TTL; the warning says so.
func (c *cache[K, V]) invalidate(ctx context.Context, ids ...K) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = c.key(id)
	}
	ctx, cancel := context.WithTimeout(ctx, invalidateBudget)
	defer cancel()
	if c.bus == nil {
		if err := c.client.Del(ctx, keys...).Err(); err != nil {
			c.warn(ctx, "invalidate", err)
		}
		return
	}
	// One round trip deletes the entries and tells the other processes to drop their local
	// copies; ours go after the DEL, so that no read of ours refills them from the old entry.
	raw := make([]int64, len(ids))
	for i, id := range ids {
		raw[i] = int64(id)
	}
	pipe := c.client.Pipeline()
	pipe.Del(ctx, keys...)
	c.bus.publish(ctx, pipe, c.kind, raw)
	if _, err := pipe.Exec(ctx); err != nil {
		c.warn(ctx, "invalidate", err)
	}
	c.bus.dropLocal(c.kind, raw)
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
