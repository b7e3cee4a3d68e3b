package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale"
)

// findByIDs is the batch read behind every FindXByIDs: it groups ids by shard, sends one
// `= ANY($1)` statement per shard touched (in parallel), and returns one value or error per id
// in the order of ids. A missing id gets NOT_FOUND; a failing shard fails only its own ids.
func findByIDs[ID comparable, T any](
	ctx context.Context, db *DB, ids []ID, bucket func(ID) int,
	query string, scan func(pgx.Row) (*T, error), idOf func(*T) ID, what string,
) ([]*T, []error) {
	values := make([]*T, len(ids))
	errs := make([]error, len(ids))
	groups := groupByShard(db, ids, bucket)
	shards := sortedShards(groups)
	found := make([]map[ID]*T, len(shards))
	shardErrs := make([]error, len(shards))
	run := func(i int) {
		positions := groups[shards[i]]
		keys := make([]ID, len(positions))
		for j, p := range positions {
			keys[j] = ids[p]
		}
		rows, err := db.pools[shards[i]].Query(ctx, query, keys)
		if err != nil {
			shardErrs[i] = err
			return
		}
		m := make(map[ID]*T, len(keys))
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				shardErrs[i] = err
				rows.Close()
				return
			}
			m[idOf(v)] = v
		}
		shardErrs[i] = rows.Err()
		found[i] = m
	}
	parallel(len(shards), run)
	for i, s := range shards {
		for _, p := range groups[s] {
			switch {
			case shardErrs[i] != nil:
				errs[p] = fmt.Errorf("find %s %v on shard %d: %w", what, ids[p], s, shardErrs[i])
			case found[i][ids[p]] == nil:
				errs[p] = flashsale.Errorf(flashsale.ENOTFOUND, "%s not found", what)
			default:
				values[p] = found[i][ids[p]]
			}
		}
	}
	return values, errs
}

// returnedSet collects the one-column rows of a statement (its RETURNING ids, say) into a
// set: the batch writers use it to tell which of their rows a statement wrote.
func returnedSet[T comparable](rows pgx.Rows, err error) (map[T]bool, error) {
	if err != nil {
		return nil, err
	}
	list, err := pgx.CollectRows(rows, pgx.RowTo[T])
	if err != nil {
		return nil, err
	}
	set := make(map[T]bool, len(list))
	for _, v := range list {
		set[v] = true
	}
	return set, nil
}
