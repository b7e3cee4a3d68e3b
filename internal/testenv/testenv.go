// Package testenv gives integration tests isolated pieces of the real services: fresh shard
// databases, Redis key prefixes, a private redis-server for destructive tests, and RabbitMQ
// names. A missing service fails the test with a message saying how to start it; nothing
// here ever skips.
package testenv

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale/stores/postgres"
)

// Addresses of the shared local services; override with TEST_PG_URL, TEST_REDIS_URL and
// TEST_RABBITMQ_URL.
var (
	pgBase    = getenv("TEST_PG_URL", "postgres://postgres@127.0.0.1:5432")
	redisURL  = getenv("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
	rabbitURL = getenv("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
)

const startHint = "start the local services with `make services` (deploy/local/services.sh)"

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Name returns a short unique lowercase name for test resources, such as "t3k9x2mq7a".
func Name() string { return "t" + strings.ToLower(rand.Text()[:10]) }

// Shards creates n fresh, migrated shard databases for this test, drops them when it ends,
// and returns their URLs in shard order.
func Shards(tb testing.TB, n int) []string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := Name()
	urls := make([]string, n)
	for i := range urls {
		urls[i] = fmt.Sprintf("%s/%s_%d?sslmode=disable", pgBase, name, i)
	}
	if err := postgres.CreateDatabases(ctx, urls); err != nil {
		tb.Fatalf("testenv: PostgreSQL at %s is not usable (%v): %s", pgBase, err, startHint)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := postgres.DropDatabases(ctx, urls); err != nil {
			tb.Errorf("testenv: drop test databases: %v", err)
		}
	})
	if err := postgres.Migrate(ctx, urls); err != nil {
		tb.Fatalf("testenv: migrate test shards: %v", err)
	}
	return urls
}

// PoolSize is the pool size per shard tests should use: they run side by side against one
// server of 100 connections.
const PoolSize = 4

// DB opens the shards of Shards(tb, n) and closes them when the test ends.
func DB(tb testing.TB, n int, opts postgres.Options) (*postgres.DB, []string) {
	tb.Helper()
	if opts.MaxConns == 0 {
		opts.MaxConns = PoolSize
	}
	urls := Shards(tb, n)
	db, err := postgres.Open(context.Background(), urls, opts)
	if err != nil {
		tb.Fatalf("testenv: open shards: %v", err)
	}
	tb.Cleanup(db.Close)
	return db, urls
}

// RedisURL returns the shared Redis's URL after checking that it answers.
func RedisURL(tb testing.TB) string {
	tb.Helper()
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		tb.Fatalf("testenv: TEST_REDIS_URL: %v", err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		tb.Fatalf("testenv: Redis at %s does not answer (%v): %s", redisURL, err, startHint)
	}
	return redisURL
}

// Redis returns a client of the shared Redis and a key prefix unique to this test. Tests
// share the server, so they must keep to their prefix and never FLUSHALL: use
// PrivateRedis for that.
func Redis(tb testing.TB) (*redis.Client, string) {
	tb.Helper()
	opts, _ := redis.ParseURL(RedisURL(tb))
	c := redis.NewClient(opts)
	tb.Cleanup(func() { c.Close() })
	return c, Name() + ":"
}

// PrivateRedis starts a redis-server of this test's own on a free port (nothing kept on disk)
// and stops it when the test ends. Destructive tests (FLUSHALL, restarts) use it.
func PrivateRedis(tb testing.TB) (url string, stop func()) {
	tb.Helper()
	srv := StartRedisServer(tb)
	return srv.URL, srv.Stop
}

// RedisServer is a private redis-server that a test may stop and start again on the same
// port, empty, as a restart without persistence leaves it.
type RedisServer struct {
	URL  string
	tb   testing.TB
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
}

// StartRedisServer starts a private redis-server on a free port and stops it when the test
// ends.
func StartRedisServer(tb testing.TB) *RedisServer {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("testenv: redis-server is not installed: %v", err)
	}
	s := &RedisServer{tb: tb, bin: bin, port: FreePort(tb), dir: tb.TempDir()}
	s.URL = fmt.Sprintf("redis://127.0.0.1:%d/0", s.port)
	s.Start()
	tb.Cleanup(s.Stop)
	return s
}

// Start starts the server (again) and waits until it accepts connections.
func (s *RedisServer) Start() {
	s.tb.Helper()
	cmd := exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("testenv: start redis-server: %v", err)
	}
	s.cmd = cmd
	addr := fmt.Sprintf("127.0.0.1:%d", s.port)
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		if i > 100 {
			s.tb.Fatalf("testenv: private redis-server on %s did not start", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server, losing everything it held; stopping a stopped server does nothing.
func (s *RedisServer) Stop() {
	if s.cmd != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

// RabbitURL returns the shared RabbitMQ's URL after checking that it accepts connections.
// Tests isolate themselves by naming exchanges and queues with Name().
func RabbitURL(tb testing.TB) string {
	tb.Helper()
	c, err := net.DialTimeout("tcp", hostPort(rabbitURL, "5672"), 5*time.Second)
	if err != nil {
		tb.Fatalf("testenv: RabbitMQ at %s does not answer (%v): %s", rabbitURL, err, startHint)
	}
	c.Close()
	return rabbitURL
}

// FreePort returns a TCP port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	port, err := freePort()
	if err != nil {
		tb.Fatalf("testenv: find a free port: %v", err)
	}
	return port
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func hostPort(rawURL, defPort string) string {
	rest := rawURL[strings.Index(rawURL, "://")+3:]
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = rest[at+1:]
	}
	if slash := strings.Index(rest, "/"); slash >= 0 {
		rest = rest[:slash]
	}
	if !strings.Contains(rest, ":") {
		rest += ":" + defPort
	}
	return rest
}

// Eventually polls check every 50ms until it returns nil, failing the test with check's last
// error once `within` has passed. For effects that cross processes or brokers.
func Eventually(tb testing.TB, within time.Duration, check func() error) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %v: %v", within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
