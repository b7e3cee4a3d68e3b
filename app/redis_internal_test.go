package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testenv"
)

// The Redis check pings every node of a cluster and names the one that fails: a master that
// does not answer takes its slots' sales down, whichever node a single ping would reach.
func TestRedisCheckCoversEveryClusterNode(t *testing.T) {
	t.Parallel()
	cluster := testenv.StartRedisCluster(t)
	ctx := context.Background()
	client, err := OpenRedis(ctx, Config{Redis: RedisSettings{ClusterAddrs: cluster.Addrs[:1]}}) // one seed finds the rest
	if err != nil {
		t.Fatalf("OpenRedis: %v", err)
	}
	defer client.Close()
	if err := pingRedis(ctx, client); err != nil {
		t.Fatalf("pingRedis of a healthy cluster = %v", err)
	}
	broken := cluster.Addrs[2]
	// The node goes away, as a crashed one would.
	cluster.Node(t, broken).Shutdown(ctx) // no answer: the connection closes
	checkCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err = pingRedis(checkCtx, client)
	if err == nil || !strings.Contains(err.Error(), broken) {
		t.Errorf("pingRedis with node %s refusing = %v; want an error naming it", broken, err)
	}
	for _, ok := range cluster.Addrs[:2] {
		if err != nil && strings.Contains(err.Error(), ok) {
			t.Errorf("pingRedis = %v; names healthy node %s", err, ok)
		}
	}
}

// REDIS_USERNAME and REDIS_PASSWORD reach a server whose URL carries no credentials.
func TestOpenRedisUsesThePassword(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedisServer(t)
	ctx := context.Background()
	admin, err := OpenRedis(ctx, Config{RedisURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.Do(ctx, "ACL", "SETUSER", "shop", "on", ">shop-secret", "~*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.ConfigSet(ctx, "requirepass", "default-secret").Err(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		settings RedisSettings
		wantOK   bool
	}{
		{"none", RedisSettings{}, false},
		{"default user", RedisSettings{Password: "default-secret"}, true},
		{"ACL user", RedisSettings{Username: "shop", Password: "shop-secret"}, true},
		{"wrong password", RedisSettings{Username: "shop", Password: "guess"}, false},
	} {
		c, err := OpenRedis(ctx, Config{RedisURL: srv.URL, Redis: tt.settings})
		if (err == nil) != tt.wantOK {
			t.Errorf("%s: OpenRedis = %v; want success %v", tt.name, err, tt.wantOK)
		}
		if err == nil {
			c.Close()
		}
	}
}
