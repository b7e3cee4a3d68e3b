// Package redis keeps stock pools in Redis and carries live stock counts between processes.
//
// Inventory implements flashsale.Inventory with one Lua script per operation, so that every
// check and every write of a reservation happens atomically on the Redis server: two buyers
// can never take the same unit, and a buyer's idempotency key can never make two orders. All
// keys of a pool share one hash tag, so the scripts also run on Redis Cluster.
//
// StockBus implements flashsale.StockEvents over Redis pub/sub and fans each pool's events out
// to any number of local subscribers over a single Redis subscription per pool, and tells
// the sold-out fast path (OnRestock) when a pool's stock comes back.
//
// Redis must not evict these keys (maxmemory-policy noeviction, or no maxmemory): a pool that
// lost one of its keys but not the others would be neither usable nor rebuilt.
package redis
