// Package postgres stores users, products, flash sales and orders in PostgreSQL databases
// split into shards.
//
// Rows are placed by bucket, not by shard: every id carries one of flashsale.Buckets buckets,
// and a table (shard_buckets, kept on shard 0) assigns buckets to shards. Adding a shard moves
// whole buckets from the others and changes no id. Users are bucketed by their email, so the
// email's uniqueness and a login each need one shard; orders follow their buyer; products and
// flash sales take a random bucket, and a sale shares its product's.
package postgres
