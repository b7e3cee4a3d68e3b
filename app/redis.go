package app

import (
	"context"
	"fmt"
	"os"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// OpenRedis connects to REDIS_URL, or to a Redis Cluster when REDIS_CLUSTER_ADDRS is set.
// Every key the project writes is hash-tagged, so the same code runs on either.
func OpenRedis(ctx context.Context, url string) (goredis.UniversalClient, error) {
	var client goredis.UniversalClient
	if addrs := splitList(os.Getenv("REDIS_CLUSTER_ADDRS")); len(addrs) > 0 {
		client = goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs, PoolSize: 64})
	} else {
		opts, err := goredis.ParseURL(url)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		// The flash-sale burst keeps hundreds of requests in flight at once; the default
		// pool (10 per CPU) would queue them behind each other.
		opts.PoolSize = 64
		opts.MinIdleConns = 8
		client = goredis.NewClient(opts)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		client.Close()
		return nil, fmt.Errorf("redis: %w", err)
	}
	return client, nil
}
