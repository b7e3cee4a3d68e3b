package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// RedisSettings are how a process reaches Redis, besides REDIS_URL.
type RedisSettings struct {
	// ClusterAddrs (REDIS_CLUSTER_ADDRS, comma-separated host:port) are seed nodes of a Redis
	// Cluster; set, they replace REDIS_URL. The client finds the other nodes from them.
	ClusterAddrs []string
	// Username and Password (REDIS_USERNAME, REDIS_PASSWORD) are the ACL user and its
	// password; set, they take precedence over those in REDIS_URL.
	Username string
	Password string
	// TLS (REDIS_TLS) encrypts every connection; a rediss:// URL does too. CAFile
	// (REDIS_CA_FILE) is a PEM bundle of the authorities that sign the servers'
	// certificates, for a private CA; empty, the system's roots are trusted.
	TLS    bool
	CAFile string
}

// LogValue names what is in use and masks the password.
func (s RedisSettings) LogValue() slog.Value {
	attrs := []slog.Attr{slog.Bool("tls", s.TLS)}
	if s.CAFile != "" {
		attrs = append(attrs, slog.String("ca_file", s.CAFile))
	}
	if s.Username != "" {
		attrs = append(attrs, slog.String("username", s.Username))
	}
	if s.Password != "" {
		attrs = append(attrs, slog.String("password", "***"))
	}
	return slog.GroupValue(attrs...)
}

// readRedis reads REDIS_CLUSTER_ADDRS, REDIS_USERNAME, REDIS_PASSWORD, REDIS_TLS and
// REDIS_CA_FILE.
func (c *Config) readRedis() error {
	s := &c.Redis
	s.ClusterAddrs = splitList(os.Getenv("REDIS_CLUSTER_ADDRS"))
	s.Username = os.Getenv("REDIS_USERNAME")
	s.Password = os.Getenv("REDIS_PASSWORD")
	s.CAFile = os.Getenv("REDIS_CA_FILE")
	var err error
	if s.TLS, err = envBool("REDIS_TLS", false); err != nil {
		return err
	}
	if s.CAFile != "" && !s.TLS {
		return errors.New("REDIS_CA_FILE is set but REDIS_TLS is not true")
	}
	if s.TLS {
		if _, err := tlsConfig(s.CAFile); err != nil {
			return fmt.Errorf("REDIS_CA_FILE: %w", err)
		}
	}
	return nil
}

// redisLogAttr is the startup log's view of Redis: the cluster's addresses when the process
// uses a cluster, REDIS_URL otherwise, never both.
func (c Config) redisLogAttr() slog.Attr {
	if len(c.Redis.ClusterAddrs) > 0 {
		return slog.Group("redis", slog.Any("cluster_addrs", c.Redis.ClusterAddrs), slog.Any("settings", c.Redis))
	}
	return slog.Group("redis", slog.String("url", redact(c.RedisURL)), slog.Any("settings", c.Redis))
}

// tlsConfig returns a client TLS configuration trusting the PEM certificates in caFile, or
// the system's roots when caFile is empty.
func tlsConfig(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// redisPoolSize is the connections per Redis node: the flash-sale burst keeps hundreds of
// requests in flight at once, and the default pool (10 per CPU) would queue them behind each
// other.
const redisPoolSize = 64

// OpenRedis connects to cfg.RedisURL, or to the Redis Cluster of cfg.Redis.ClusterAddrs when
// set, and checks that every node answers. Every key the project writes is hash-tagged, so
// the same code runs on either.
//
// Calls end with their context's deadline (ContextTimeoutEnabled), not only after the
// client's read timeout: every caller bounds its own wait, the checkout's reservations and
// the cache's reads (which then go to PostgreSQL) alike, and a Redis that stops answering
// without closing its connections must not hold them longer.
func OpenRedis(ctx context.Context, cfg Config) (goredis.UniversalClient, error) {
	s := cfg.Redis
	var client goredis.UniversalClient
	if len(s.ClusterAddrs) > 0 {
		opts := &goredis.ClusterOptions{Addrs: s.ClusterAddrs, Username: s.Username, Password: s.Password,
			PoolSize: redisPoolSize, ContextTimeoutEnabled: true}
		if s.TLS {
			tc, err := tlsConfig(s.CAFile)
			if err != nil {
				return nil, fmt.Errorf("REDIS_CA_FILE: %w", err)
			}
			opts.TLSConfig = tc
		}
		client = goredis.NewClusterClient(opts)
	} else {
		opts, err := goredis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		if s.Username != "" {
			opts.Username = s.Username
		}
		if s.Password != "" {
			opts.Password = s.Password
		}
		if s.TLS || opts.TLSConfig != nil {
			tc, err := tlsConfig(s.CAFile)
			if err != nil {
				return nil, fmt.Errorf("REDIS_CA_FILE: %w", err)
			}
			if opts.TLSConfig != nil { // a rediss:// URL: keep the server name it set
				tc.ServerName = opts.TLSConfig.ServerName
			}
			opts.TLSConfig = tc
		}
		opts.PoolSize = redisPoolSize
		opts.MinIdleConns = 8
		opts.ContextTimeoutEnabled = true
		client = goredis.NewClient(opts)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pingRedis(pingCtx, client); err != nil {
		client.Close()
		return nil, fmt.Errorf("redis: %w", err)
	}
	return client, nil
}

// pingRedis pings the server, or every node of a cluster, masters and replicas, and names
// each node that does not answer: a cluster with one master down cannot serve that master's
// slots, which a ping of any other node would not show.
func pingRedis(ctx context.Context, client goredis.UniversalClient) error {
	cluster, ok := client.(*goredis.ClusterClient)
	if !ok {
		return client.Ping(ctx).Err()
	}
	// Reload the slots first: a node added or failed over since the last reload is then
	// among those pinged.
	cluster.ReloadState(ctx)
	var (
		mu   sync.Mutex
		errs []error
	)
	err := cluster.ForEachShard(ctx, func(ctx context.Context, node *goredis.Client) error {
		if err := node.Ping(ctx).Err(); err != nil {
			mu.Lock()
			errs = append(errs, fmt.Errorf("node %s: %w", node.Options().Addr, err))
			mu.Unlock()
		}
		return nil
	})
	if err != nil { // no slot map: no node answered CLUSTER SLOTS
		return fmt.Errorf("cluster %v: %w", cluster.Options().Addrs, err)
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}
