package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterEnv names the variable that runs the Redis tests against a Redis Cluster:
// "1" starts a local three-master cluster once per test binary (redis-server in cluster mode
// on free ports); a comma-separated list of host:port uses that cluster instead. `make test`
// runs the flash-sale, cache, live-stock and rate-limit tests a second time with it set.
const ClusterEnv = "TEST_REDIS_CLUSTER"

// ClusterMode reports whether ClusterEnv asks for a Redis Cluster.
func ClusterMode() bool { return os.Getenv(ClusterEnv) != "" }

// RedisClient returns a client of the shared Redis, or of this binary's Redis Cluster in
// ClusterMode, and a key prefix unique to this test. As with Redis, the test must keep to
// its prefix. The prefix holds no "{", so keys hash-tagged after it land where production's
// would.
func RedisClient(tb testing.TB) (redis.UniversalClient, string) {
	tb.Helper()
	if !ClusterMode() {
		return Redis(tb)
	}
	return RedisCluster(tb).Client(tb), Name() + ":"
}

// RedisClusterAddrs returns the addresses of this binary's Redis Cluster in ClusterMode,
// for a configuration's REDIS_CLUSTER_ADDRS, and nil otherwise.
func RedisClusterAddrs(tb testing.TB) []string {
	tb.Helper()
	if !ClusterMode() {
		return nil
	}
	return RedisCluster(tb).Addrs
}

// Cluster is a Redis Cluster of three masters without replicas.
type Cluster struct {
	// Addrs are the masters' host:port, in the order of the slot ranges they were given.
	Addrs []string
	stop  func()
}

// shared is the cluster the tests of one binary share: starting one takes a few hundred
// milliseconds, and each test keeps to its own key prefix anyway.
var shared struct {
	once    sync.Once
	cluster *Cluster
	err     error
}

// RedisCluster returns the Redis Cluster this test binary shares: the one ClusterEnv lists,
// or a local one started at the first call. A local cluster's servers stop, and their
// directory is removed, when the test binary exits, however it exits.
func RedisCluster(tb testing.TB) *Cluster {
	tb.Helper()
	shared.once.Do(func() {
		if v := os.Getenv(ClusterEnv); v != "" && v != "1" {
			shared.cluster = &Cluster{Addrs: splitAddrs(v), stop: func() {}}
			shared.err = waitClusterOK(shared.cluster.Addrs, 5*time.Second)
			return
		}
		// A directory for each try, since a failed try's shell removes its own.
		shared.cluster, shared.err = startClusterRetrying(func() string {
			dir, _ := os.MkdirTemp("", "flashsale-redis-cluster-") // on failure, redis-server says so
			return dir
		}, true)
	})
	if shared.err != nil {
		tb.Fatalf("testenv: Redis Cluster: %v", shared.err)
	}
	return shared.cluster
}

// StartRedisCluster starts a Redis Cluster of this test's own, on free ports, and stops it
// when the test ends. Tests that move slots or stop nodes use it.
func StartRedisCluster(tb testing.TB) *Cluster {
	tb.Helper()
	c, err := startClusterRetrying(tb.TempDir, false)
	if err != nil {
		tb.Fatalf("testenv: start a Redis Cluster: %v", err)
	}
	tb.Cleanup(c.stop)
	return c
}

// Client returns a cluster client of c, closed when the test ends.
func (c *Cluster) Client(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	tb.Cleanup(func() { client.Close() })
	return client
}

// Node returns a plain client of one master, closed when the test ends: for the CLUSTER
// commands that address one node.
func (c *Cluster) Node(tb testing.TB, addr string) *redis.Client {
	tb.Helper()
	client := redis.NewClient(&redis.Options{Addr: addr})
	tb.Cleanup(func() { client.Close() })
	return client
}

// startClusterRetrying starts a cluster in dir(), trying again a couple of times: a port that
// was free may be taken by another process before the server binds it.
func startClusterRetrying(dir func() string, removeDir bool) (*Cluster, error) {
	var err error
	for range 3 {
		var c *Cluster
		if c, err = startCluster(dir(), removeDir); err == nil {
			return c, nil
		}
	}
	return nil, err
}

// clusterMasters is the number of masters a local cluster has: the fewest Redis accepts.
const clusterMasters = 3

// startCluster starts clusterMasters redis-servers in cluster mode under dir, gives each a
// third of the slots, joins them and waits until every node sees the cluster whole.
//
// Each server runs under a shell that waits on its standard input, a pipe whose writing end
// only this process holds: when it is closed, by stop or by this process's exit (a crash or
// a test binary's os.Exit included), the shell kills the server and, if removeDir, removes
// dir. No server outlives the tests that use it.
func startCluster(dir string, removeDir bool) (*Cluster, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server is not installed: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var cmds []*exec.Cmd
	stop := sync.OnceFunc(func() {
		w.Close()
		for _, cmd := range cmds {
			cmd.Wait()
		}
	})
	// Ports come from the kernel's ephemeral range, where port+10000 (the default bus port)
	// may not exist: each node's bus gets a free port of its own.
	ports := make([]int, clusterMasters)
	buses := make([]int, clusterMasters)
	for i := range ports {
		if ports[i], err = freePort(); err == nil {
			buses[i], err = freePort()
		}
		if err != nil {
			stop()
			return nil, fmt.Errorf("find a free port: %w", err)
		}
	}
	addrs := make([]string, clusterMasters)
	for i, port := range ports {
		addrs[i] = "127.0.0.1:" + strconv.Itoa(port)
		p := strconv.Itoa(port)
		script := `"$0" "$@" & pid=$!; read -r _; kill -9 $pid; wait $pid`
		if removeDir && i == 0 { // one shell removes the directory, after its server
			script += `; rm -rf "$FLASHSALE_CLUSTER_DIR"`
		}
		cmd := exec.Command("sh", "-c", script, bin, "--port", p, "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(buses[i]),
			"--cluster-config-file", "nodes-"+p+".conf", "--cluster-node-timeout", "5000",
			"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis-"+p+".log"))
		cmd.Stdin = r
		cmd.Env = append(os.Environ(), "FLASHSALE_CLUSTER_DIR="+dir)
		if err := cmd.Start(); err != nil {
			stop()
			return nil, fmt.Errorf("start redis-server: %w", err)
		}
		cmds = append(cmds, cmd)
	}
	c := &Cluster{Addrs: addrs, stop: stop}
	if err := c.join(ports, buses); err != nil {
		stop()
		return nil, fmt.Errorf("%w (logs in %s)", err, dir)
	}
	return c, nil
}

// join gives each node its config epoch and its range of slots, introduces the nodes to the
// first one, and waits until every node reports the cluster ok.
func (c *Cluster) join(ports, buses []int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const slots = 16384
	for i, addr := range c.Addrs {
		node := redis.NewClient(&redis.Options{Addr: addr})
		defer node.Close()
		if err := waitPing(ctx, node); err != nil {
			return fmt.Errorf("node %s: %w", addr, err)
		}
		// Distinct config epochs, as redis-cli gives: nodes that share one resolve the
		// collision by bumping theirs over the following seconds, and a bump that lands while
		// a slot moves can make a node take back the slot it is handing over, leaving the
		// two sending clients to each other with MOVED.
		if err := node.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
			return fmt.Errorf("node %s: CLUSTER SET-CONFIG-EPOCH: %w", addr, err)
		}
		lo, hi := i*slots/clusterMasters, (i+1)*slots/clusterMasters-1
		if err := node.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			return fmt.Errorf("node %s: CLUSTER ADDSLOTSRANGE %d %d: %w", addr, lo, hi, err)
		}
		if i > 0 {
			if err := node.Do(ctx, "CLUSTER", "MEET", "127.0.0.1", ports[0], buses[0]).Err(); err != nil {
				return fmt.Errorf("node %s: CLUSTER MEET: %w", addr, err)
			}
		}
	}
	return waitClusterOK(c.Addrs, 20*time.Second)
}

// waitClusterOK waits until every one of addrs says cluster_state:ok.
func waitClusterOK(addrs []string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for _, addr := range addrs {
		node := redis.NewClient(&redis.Options{Addr: addr})
		defer node.Close()
		for {
			info, err := node.ClusterInfo(ctx).Result()
			// A node is ok only once it knows an owner of every slot, so of every master.
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("node %s not ok after %v: %v %q", addr, within, err, info)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

func waitPing(ctx context.Context, c *redis.Client) error {
	for {
		err := c.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("does not answer: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// MoveSlot moves slot from the master that serves it to the next one, as a resharding does:
// the target marks it IMPORTING, the source MIGRATING, the source's keys in it go over one
// at a time with pause after each (so that clients meet the slot split between the two, and
// get ASK and TRYAGAIN), and then every master is told the target's id. It returns the
// source's and the target's addresses.
func (c *Cluster) MoveSlot(tb testing.TB, slot int, pause time.Duration) (from, to string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nodes := make([]*redis.Client, len(c.Addrs))
	ids := make([]string, len(c.Addrs))
	src := -1
	for i, addr := range c.Addrs {
		nodes[i] = c.Node(tb, addr)
		var err error
		if ids[i], err = nodes[i].ClusterMyID(ctx).Result(); err != nil {
			tb.Fatalf("testenv: CLUSTER MYID of %s: %v", addr, err)
		}
	}
	slots, err := nodes[0].ClusterSlots(ctx).Result()
	if err != nil {
		tb.Fatalf("testenv: CLUSTER SLOTS: %v", err)
	}
	for _, r := range slots {
		if int(r.Start) <= slot && slot <= int(r.End) {
			for i, addr := range c.Addrs {
				if r.Nodes[0].Addr == addr {
					src = i
				}
			}
		}
	}
	if src < 0 {
		tb.Fatalf("testenv: no master of this cluster serves slot %d: %+v", slot, slots)
	}
	dst := (src + 1) % len(c.Addrs)
	source, target := nodes[src], nodes[dst]
	do := func(node *redis.Client, args ...any) {
		tb.Helper()
		if err := node.Do(ctx, args...).Err(); err != nil {
			tb.Fatalf("testenv: %v on %s: %v", args, node.Options().Addr, err)
		}
	}
	do(target, "CLUSTER", "SETSLOT", slot, "IMPORTING", ids[src])
	do(source, "CLUSTER", "SETSLOT", slot, "MIGRATING", ids[dst])
	host, port, _ := strings.Cut(c.Addrs[dst], ":")
	for {
		keys, err := source.ClusterGetKeysInSlot(ctx, slot, 1).Result()
		if err != nil {
			tb.Fatalf("testenv: CLUSTER GETKEYSINSLOT %d: %v", slot, err)
		}
		if len(keys) == 0 {
			break
		}
		if err := source.Migrate(ctx, host, port, keys[0], 0, 5*time.Second).Err(); err != nil {
			tb.Fatalf("testenv: MIGRATE %s to %s: %v", keys[0], c.Addrs[dst], err)
		}
		time.Sleep(pause)
	}
	// The target first, so that the slot is never without an owner that accepts it.
	do(target, "CLUSTER", "SETSLOT", slot, "NODE", ids[dst])
	do(source, "CLUSTER", "SETSLOT", slot, "NODE", ids[dst])
	for i, node := range nodes {
		if i != src && i != dst {
			do(node, "CLUSTER", "SETSLOT", slot, "NODE", ids[dst])
		}
	}
	return c.Addrs[src], c.Addrs[dst]
}
