package bench

import (
	"strings"
	"testing"
	"time"
)

func TestShardURLs(t *testing.T) {
	t.Parallel()
	got, err := shardURLs("postgres://app:secret@db.local:5433/flashsale_shard_0?sslmode=disable", 2, benchShardNames)
	if err != nil {
		t.Fatalf("shardURLs: %v", err)
	}
	want := []string{
		"postgres://app:secret@db.local:5433/flashsale_bench_shard_0?sslmode=disable",
		"postgres://app:secret@db.local:5433/flashsale_bench_shard_1?sslmode=disable",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("shardURLs = %q; want %q", got, want)
	}
}

func TestPercentileMs(t *testing.T) {
	t.Parallel()
	var l latencies
	for i := 100; i >= 1; i-- {
		l = append(l, msDuration(i))
	}
	if p50, p99, p100 := l.percentileMs(50), l.percentileMs(99), l.percentileMs(100); p50 != 50 || p99 != 99 || p100 != 100 {
		t.Errorf("percentiles of 1..100 ms = %v, %v, %v; want 50, 99, 100", p50, p99, p100)
	}
	if got := (latencies{}).percentileMs(99); got != 0 {
		t.Errorf("percentile of nothing = %v; want 0", got)
	}
}

func TestLoopbackServices(t *testing.T) {
	t.Parallel()
	local := Config{}
	local.Services.RedisURL = "redis://localhost:6379/0"
	local.Services.RabbitMQURL = "amqp://guest:guest@127.0.0.1:5672/"
	local.Services.DatabaseShards = []string{"postgres://postgres@[::1]:5432/a", "postgres://postgres@localhost/b"}
	if err := loopbackServices(local); err != nil {
		t.Errorf("loopbackServices(local services) = %v; want nil", err)
	}
	remoteDB := local
	remoteDB.Services.DatabaseShards = []string{"postgres://postgres@db.example.com:5432/a"}
	if err := loopbackServices(remoteDB); err == nil {
		t.Errorf("loopbackServices with a remote shard = nil; want an error")
	}
	remoteDB.URL = "http://127.0.0.1:8080" // a running stack: the bench connects only to its Redis
	if err := loopbackServices(remoteDB); err != nil {
		t.Errorf("loopbackServices(-url, remote shard) = %v; want nil", err)
	}
	remoteRedis := local
	remoteRedis.Services.RedisURL = "redis://10.0.0.5:6379/0"
	if err := loopbackServices(remoteRedis); err == nil {
		t.Errorf("loopbackServices with a remote Redis = nil; want an error")
	}
}

func msDuration(n int) time.Duration { return time.Duration(n) * time.Millisecond }
