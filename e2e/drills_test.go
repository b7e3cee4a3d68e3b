package e2e_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/drill"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/postgres"
)

// The fault drills (`make faults` runs them alone): a flash sale on the real stack with one
// fault a third of the way through, after which the contract's invariants must hold. Each
// drill has its own servers or proxies, so nothing another test uses is touched. See
// internal/drill for what is checked and the report line each logs.

// The same sale with no fault: the baseline the others' figures are read against.
func TestDrillNoFault(t *testing.T) {
	t.Parallel()
	st := drill.StartStack(t, drill.Options{})
	drill.Drill(t, st, drill.DefaultSale, drill.Fault{Name: "none", Inject: func(context.Context, *drill.Run) error { return nil }})
}

func TestDrillRedisFlushed(t *testing.T) {
	t.Parallel()
	redis := testenv.StartRedisServer(t)
	st := drill.StartStack(t, drill.Options{Config: func(c *app.Config) { c.RedisURL = redis.URL }})
	drill.Drill(t, st, drill.DefaultSale, drill.Fault{Name: "redis-flushed", Inject: func(ctx context.Context, r *drill.Run) error {
		c := redisClient(t, redis.URL)
		return c.FlushAll(ctx).Err()
	}})
}

func TestDrillRedisRestarted(t *testing.T) {
	t.Parallel()
	redis := testenv.StartRedisServer(t)
	st := drill.StartStack(t, drill.Options{Config: func(c *app.Config) { c.RedisURL = redis.URL }})
	drill.Drill(t, st, drill.DefaultSale, drill.Fault{Name: "redis-restarted", Inject: func(ctx context.Context, r *drill.Run) error {
		redis.Stop()
		time.Sleep(500 * time.Millisecond)
		redis.Start() // fails the test itself if the server does not come back
		return nil
	}})
}

// A third in, the sale's pool keys are copied; two thirds in, the copy is put back over them,
// as a failover to a lagging replica or a restart from an older snapshot would.
func TestDrillRedisRestoredFromOlderCopy(t *testing.T) {
	t.Parallel()
	redis := testenv.StartRedisServer(t)
	st := drill.StartStack(t, drill.Options{Config: func(c *app.Config) { c.RedisURL = redis.URL }})
	drill.Drill(t, st, drill.DefaultSale, drill.Fault{Name: "redis-restored-older", Inject: func(ctx context.Context, r *drill.Run) error {
		c := redisClient(t, redis.URL)
		pattern := st.Base().Namespace + ":{" + string(r.Pool()) + "}:*"
		keys, err := c.Keys(ctx, pattern).Result()
		if err != nil || len(keys) == 0 {
			return fmt.Errorf("find the pool's keys %q: %v (found %d)", pattern, err, len(keys))
		}
		dumps := map[string]string{}
		for _, k := range keys {
			if dumps[k], err = c.Dump(ctx, k).Result(); err != nil {
				return fmt.Errorf("dump %s: %w", k, err)
			}
		}
		soldAtCopy := r.Sold()
		if !r.WaitSold(ctx, 2*r.Sale.Quantity/3) {
			return fmt.Errorf("the sale never sold two thirds (%d sold)", r.Sold())
		}
		for k, v := range dumps {
			if err := c.RestoreReplace(ctx, k, 0, v).Err(); err != nil {
				return fmt.Errorf("restore %s: %w", k, err)
			}
		}
		r.Logf("restored the pool as it was at %d units sold, at %d sold", soldAtCopy, r.Sold())
		return nil
	}})
}

// The Redis connections of the API and the workers are cut for a second, then slowed.
func TestDrillRedisCutAndSlowed(t *testing.T) {
	t.Parallel()
	redis := testenv.StartRedisServer(t)
	proxy, addr := testenv.Proxy(t, redisAddr(t, redis.URL))
	st := drill.StartStack(t, drill.Options{Config: func(c *app.Config) { c.RedisURL = "redis://" + addr + "/0" }})
	drill.Drill(t, st, drill.DefaultSale, drill.Fault{Name: "redis-cut-slowed", Inject: func(ctx context.Context, r *drill.Run) error {
		return cutThenSlow(ctx, proxy, time.Second, 50*time.Millisecond, 2*time.Second)
	}})
}

// Redis stops answering for two seconds without closing a connection, as a network that
// drops packets or a node frozen mid-failover does: every call in flight waits on a silent
// socket until its caller's deadline.
func TestDrillRedisSilent(t *testing.T) {
	t.Parallel()
	redis := testenv.StartRedisServer(t)
	proxy, addr := testenv.Proxy(t, redisAddr(t, redis.URL))
	st := drill.StartStack(t, drill.Options{Config: func(c *app.Config) { c.RedisURL = "redis://" + addr + "/0" }})
	drill.Drill(t, st, drill.DefaultSale, drill.Fault{Name: "redis-silent", Inject: func(ctx context.Context, r *drill.Run) error {
		if _, err := proxy.Toxics.AddToxicJson(strings.NewReader(
			`{"name":"silence","type":"timeout","stream":"upstream","attributes":{"timeout":0}}`)); err != nil {
			return err
		}
		time.Sleep(2 * time.Second)
		// The silent connections stay stuck; clients must give them up and dial anew.
		proxy.Stop()
		if err := proxy.Toxics.RemoveToxic(ctx, "silence"); err != nil {
			return err
		}
		return proxy.Start()
	}})
}

// The workers' RabbitMQ connections (the relay's publisher, the consumers) are cut for a
// second, then slowed.
func TestDrillRabbitMQCutAndSlowed(t *testing.T) {
	t.Parallel()
	proxy, rabbitURL := rabbitProxy(t)
	st := drill.StartStack(t, drill.Options{Workers: func(c *app.Config) { c.RabbitMQURL = rabbitURL }})
	drill.Drill(t, st, drill.DefaultSale, drill.Fault{Name: "rabbitmq-cut-slowed", Inject: func(ctx context.Context, r *drill.Run) error {
		return cutThenSlow(ctx, proxy, time.Second, 100*time.Millisecond, 2*time.Second)
	}})
}

// What reaches RabbitMQ from the workers slows to a trickle for three seconds, as when the
// broker blocks publishers under a resource alarm: publishes and their confirms stall.
func TestDrillRabbitMQBlocksPublishers(t *testing.T) {
	t.Parallel()
	proxy, rabbitURL := rabbitProxy(t)
	st := drill.StartStack(t, drill.Options{Workers: func(c *app.Config) { c.RabbitMQURL = rabbitURL }})
	drill.Drill(t, st, drill.DefaultSale, drill.Fault{Name: "rabbitmq-blocks-publishers", Inject: func(ctx context.Context, r *drill.Run) error {
		w, err := proxy.Toxics.AddToxicJson(strings.NewReader(`{"name":"stall","type":"bandwidth","stream":"upstream","attributes":{"rate":1}}`))
		if err != nil {
			return err
		}
		time.Sleep(3 * time.Second)
		// The stall must have held events back, or the drill drilled nothing.
		held, err := unpublished(ctx, st)
		if err != nil {
			return err
		}
		r.Logf("%d order events waited to be published when the stall ended", held)
		if held == 0 {
			return fmt.Errorf("no order event was held back by the stall")
		}
		return proxy.Toxics.RemoveToxic(ctx, w.Name)
	}})
}

// Every PostgreSQL connection to the drill's shards is terminated, twice, 300 ms apart.
func TestDrillPostgresBackendsKilled(t *testing.T) {
	t.Parallel()
	st := drill.StartStack(t, drill.Options{})
	drill.Drill(t, st, drill.DefaultSale, drill.Fault{Name: "postgres-backends-killed", Inject: func(ctx context.Context, r *drill.Run) error {
		total := 0
		for i := range 2 {
			if i > 0 {
				time.Sleep(300 * time.Millisecond)
			}
			n, err := testenv.TerminateBackends(ctx, st.Base().DatabaseShards)
			if err != nil {
				return err
			}
			total += n
		}
		r.Logf("terminated %d backends", total)
		if total == 0 {
			return fmt.Errorf("no backend of the drill's shards was found to terminate")
		}
		return nil
	}})
}

// The API dies with orders between their reservation in Redis and their insert in
// PostgreSQL: its PostgreSQL is slowed so that inserts are in flight, then its every
// connection is cut at once and a new API takes its place on the same shards and Redis.
// The holds the dead API left are returned by reconciliation after the orphan grace.
func TestDrillAPIKilledMidOrder(t *testing.T) {
	t.Parallel()
	pgProxy, pgProxied := testenv.Proxy(t, testenv.PostgresAddr())
	redisProxy, redisProxied := testenv.Proxy(t, redisAddr(t, testenv.RedisURL(t)))
	st := drill.StartStack(t, drill.Options{API: func(c *app.Config) {
		c.RedisURL = "redis://" + redisProxied + "/0"
		shards := make([]string, len(c.DatabaseShards))
		for i, u := range c.DatabaseShards {
			shards[i] = strings.Replace(u, testenv.PostgresAddr(), pgProxied, 1)
		}
		c.DatabaseShards = shards
	}})
	drill.Drill(t, st, drill.DefaultSale, drill.Fault{Name: "api-killed-mid-order", Inject: func(ctx context.Context, r *drill.Run) error {
		dying := st.API()
		if _, err := pgProxy.Toxics.AddToxicJson(strings.NewReader(
			`{"name":"slow","type":"latency","stream":"upstream","attributes":{"latency":150}}`)); err != nil {
			return err
		}
		time.Sleep(400 * time.Millisecond)
		dying.API.Abort()
		pgProxy.Stop()
		redisProxy.Stop()
		base := st.Base()
		// What the dead API left: units held in Redis for orders it never wrote.
		holds, err := st.Workers.Inventory.Holds(ctx, r.Pool())
		if err != nil {
			return fmt.Errorf("read the holds: %w", err)
		}
		ids := make([]flashsale.OrderID, len(holds))
		for i, h := range holds {
			ids[i] = h.OrderID
		}
		orphans := 0
		_, errs := postgres.NewOrderStore(st.Workers.DB).FindOrdersByIDs(ctx, ids)
		for _, err := range errs {
			if flashsale.ErrorCode(err) == flashsale.ENOTFOUND {
				orphans++
			}
		}
		r.Logf("the API died with %d of %d holds without an order", orphans, len(holds))
		st.ReplaceAPI(apitest.WithConfig(func(c *app.Config) {
			c.DatabaseShards, c.RedisURL = base.DatabaseShards, base.RedisURL
		}))
		return nil
	}})
}

// The payment worker, holding deliveries (its gateway is slow), loses its broker connection
// and stops; another takes its place and gets the unacknowledged deliveries again.
func TestDrillPaymentsWorkerKilled(t *testing.T) {
	t.Parallel()
	proxy, rabbitURL := rabbitProxy(t)
	st := drill.StartStack(t, drill.Options{})
	st.StopWorker(drill.Payments)
	st.StartWorker(drill.Payments, func(c *app.Config) {
		c.RabbitMQURL = rabbitURL
		c.PaymentLatency = 300 * time.Millisecond
	})
	drill.Drill(t, st, drill.DefaultSale, drill.Fault{Name: "payments-worker-killed", Inject: func(ctx context.Context, r *drill.Run) error {
		// Orders waiting for their payment are what the worker holds.
		pending, err := countOrders(ctx, st, "PENDING")
		if err != nil {
			return err
		}
		r.Logf("%d orders were unpaid when the payment worker died", pending)
		if pending == 0 {
			return fmt.Errorf("the payment worker held nothing when it died")
		}
		proxy.Stop()
		st.StopWorker(drill.Payments)
		st.StartWorker(drill.Payments, nil)
		return nil
	}})
}

// The Kafka broker stops and starts again a second later on the same port with its data,
// while the relay streams order events and the analytics worker consumes them.
func TestDrillKafkaBrokerRestarted(t *testing.T) {
	t.Parallel()
	st := drill.StartStack(t, drill.Options{})
	drill.Drill(t, st, drill.DefaultSale, drill.Fault{Name: "kafka-restarted", Inject: func(ctx context.Context, r *drill.Run) error {
		return st.RestartBroker(ctx, time.Second)
	}})
}

// A second API replica joins with its clock two minutes behind, and buyers are shared
// between the two: the sale, open for a minute already, must sell the same on both.
func TestDrillReplicasWithSkewedClocks(t *testing.T) {
	t.Parallel()
	st := drill.StartStack(t, drill.Options{})
	drill.Drill(t, st, drill.DefaultSale, drill.Fault{Name: "replicas-skewed-clocks", Inject: func(ctx context.Context, r *drill.Run) error {
		st.AddReplica(apitest.WithOptions(func(o *app.Options) {
			o.Clock = func() time.Time { return time.Now().Add(-2 * time.Minute) }
		}))
		return nil
	}})
}

// cutThenSlow cuts the proxy's connections and refuses new ones for cut, then lets them
// through with latency added both ways for slow.
func cutThenSlow(ctx context.Context, proxy *toxiproxy.Proxy, cut time.Duration, latency, slow time.Duration) error {
	proxy.Stop()
	time.Sleep(cut)
	if err := proxy.Start(); err != nil {
		return fmt.Errorf("bring the proxy back: %w", err)
	}
	for _, stream := range []string{"upstream", "downstream"} {
		if _, err := proxy.Toxics.AddToxicJson(strings.NewReader(fmt.Sprintf(
			`{"name":"slow-%s","type":"latency","stream":"%s","attributes":{"latency":%d}}`, stream, stream, latency.Milliseconds()))); err != nil {
			return err
		}
	}
	time.Sleep(slow)
	for _, stream := range []string{"upstream", "downstream"} {
		if err := proxy.Toxics.RemoveToxic(ctx, "slow-"+stream); err != nil {
			return err
		}
	}
	return nil
}

// countOrders counts the orders in the status, across the shards.
func countOrders(ctx context.Context, st *drill.Stack, status string) (int, error) {
	total := 0
	for shard := range st.Workers.DB.Shards() {
		var n int
		if err := st.Workers.DB.Pool(shard).QueryRow(ctx, `SELECT count(*) FROM orders WHERE status = $1`, status).Scan(&n); err != nil {
			return 0, fmt.Errorf("count %s orders of shard %d: %w", status, shard, err)
		}
		total += n
	}
	return total, nil
}

// unpublished counts the outbox rows not yet published to RabbitMQ, across the shards.
func unpublished(ctx context.Context, st *drill.Stack) (int, error) {
	total := 0
	for shard := range st.Workers.DB.Shards() {
		var n int
		if err := st.Workers.DB.Pool(shard).QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&n); err != nil {
			return 0, fmt.Errorf("count unpublished events of shard %d: %w", shard, err)
		}
		total += n
	}
	return total, nil
}

func redisClient(t *testing.T, rawURL string) *goredis.Client {
	opts, err := goredis.ParseURL(rawURL)
	if err != nil {
		t.Errorf("redis URL %q: %v", rawURL, err)
		opts = &goredis.Options{}
	}
	c := goredis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func redisAddr(t *testing.T, rawURL string) string {
	t.Helper()
	opts, err := goredis.ParseURL(rawURL)
	if err != nil {
		t.Fatalf("redis URL %q: %v", rawURL, err)
	}
	return opts.Addr
}

// rabbitProxy puts a Toxiproxy in front of RabbitMQ and returns it with the URL through it.
func rabbitProxy(t *testing.T) (*toxiproxy.Proxy, string) {
	t.Helper()
	u, err := url.Parse(testenv.RabbitURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy, addr := testenv.Proxy(t, u.Host)
	u.Host = addr
	return proxy, u.String()
}
