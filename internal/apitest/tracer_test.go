package apitest_test

import (
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/apitest"
	"github.com/flashsale/flashsale/internal/testenv"
)

// TestStatementCounterCounts checks what the counter's comment promises it counts.
func TestStatementCounterCounts(t *testing.T) {
	t.Parallel()
	counter := apitest.NewStatementCounter()
	db, _ := testenv.DB(t, 3, counter.Options())
	ctx := t.Context()
	tests := []struct {
		name string
		run  func() error
		want []int
	}{
		{"nothing", func() error { return nil }, []int{0, 0, 0}},
		{"QueryRow on shard 1", func() error {
			var n int
			return db.Pool(1).QueryRow(ctx, `SELECT 1`).Scan(&n)
		}, []int{0, 1, 0}},
		{"Exec and Query on shard 2", func() error {
			if _, err := db.Pool(2).Exec(ctx, `SELECT 1`); err != nil {
				return err
			}
			rows, err := db.Pool(2).Query(ctx, `SELECT generate_series(1, 10)`)
			if err != nil {
				return err
			}
			rows.Close()
			return rows.Err()
		}, []int{0, 0, 2}},
		{"a transaction of one statement on shard 0: begin, statement, commit", func() error {
			return pgx.BeginFunc(ctx, db.Pool(0), func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `SELECT 1`)
				return err
			})
		}, []int{3, 0, 0}},
		{"a failing statement", func() error {
			if _, err := db.Pool(1).Exec(ctx, `SELECT * FROM no_such_table`); err == nil {
				t.Errorf("selecting from a missing table succeeded")
			}
			return nil
		}, []int{0, 1, 0}},
		{"a batch is not counted", func() error {
			b := &pgx.Batch{}
			b.Queue(`SELECT 1`)
			b.Queue(`SELECT 2`)
			return db.Pool(0).SendBatch(ctx, b).Close()
		}, []int{0, 0, 0}},
		{"a ping is not counted", func() error { return db.Ping(ctx) }, []int{0, 0, 0}},
	}
	for _, tt := range tests {
		counter.Reset()
		if err := tt.run(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := counter.Counts(); !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v\n%s", tt.name, got, tt.want, counter)
		}
		if got, want := counter.Total(), tt.want[0]+tt.want[1]+tt.want[2]; got != want {
			t.Errorf("%s: Total() = %d, want %d", tt.name, got, want)
		}
	}
}
