package postgres_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/postgres"
)

// chiSquare999 holds the chi-square statistic that a fair spread over df+1 shards exceeds
// with probability 0.001, by degrees of freedom. The emails are fixed, so the statistic is
// too: the test cannot flake, and a routing fault pushes it far beyond these.
var chiSquare999 = map[int]float64{1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47, 5: 20.52}

func TestUsersSpreadInProportionToBuckets(t *testing.T) {
	t.Parallel()
	even := func(n int) []int {
		table := make([]int, flashsale.Buckets)
		for b := range table {
			table[b] = postgres.DefaultBucketShard(b, n)
		}
		return table
	}
	// Uneven: shard 0 owns half the buckets, shards 1 and 2 a quarter each, interleaved.
	uneven := make([]int, flashsale.Buckets)
	for b := range uneven {
		uneven[b] = []int{0, 1, 0, 2}[b%4]
	}
	tests := []struct {
		name  string
		table []int
	}{
		{"default table over 4 shards", even(4)},
		{"uneven table over 3 shards", uneven},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := slices.Max(tt.table) + 1
			urls := testenv.Shards(t, n)
			seedBucketTable(t, urls[0], tt.table)
			db := openDB(t, urls, postgres.Options{})
			users := postgres.NewUserStore(db)

			const total = 2000
			createUsers(t, users, total, "spread")

			got, err := users.CountUsersByShard(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			owned := make([]int, n)
			for _, s := range tt.table {
				owned[s]++
			}
			chi := 0.0
			for s := range n {
				want := float64(total) * float64(owned[s]) / flashsale.Buckets
				chi += (float64(got[s]) - want) * (float64(got[s]) - want) / want
				t.Logf("shard %d: %d users, %.0f expected from %d buckets", s, got[s], want, owned[s])
			}
			if limit := chiSquare999[n-1]; chi > limit {
				t.Errorf("users per shard %v for buckets per shard %v: chi-square %.1f; want at most %.2f", got, owned, chi, limit)
			}
			// Every row sits on the shard that owns its bucket.
			for s, u := range urls {
				rows, err := connect(t, u).Query(t.Context(), `SELECT DISTINCT bucket FROM users`)
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var b int
					if err := rows.Scan(&b); err != nil {
						t.Fatal(err)
					}
					if tt.table[b] != s {
						t.Errorf("shard %d holds users of bucket %d, which shard %d owns", s, b, tt.table[b])
					}
				}
				if err := rows.Err(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestFindUserTouchesOneShard(t *testing.T) {
	t.Parallel()
	db, counter, _ := countedDB(t, 4)
	users := postgres.NewUserStore(db)
	created := createUsers(t, users, 40, "find")

	type lookup struct {
		name  string
		find  func() (*flashsale.User, error)
		shard int
		want  *flashsale.User // nil: NOT_FOUND
	}
	var lookups []lookup
	for _, u := range created[:8] {
		shard := db.ShardOf(u.ID.Bucket())
		lookups = append(lookups,
			lookup{"id " + u.ID.String(), func() (*flashsale.User, error) { return users.FindUserByID(t.Context(), u.ID) }, shard, u},
			lookup{"email " + u.Email, func() (*flashsale.User, error) { return users.FindUserByEmail(t.Context(), u.Email) }, shard, u},
			lookup{"email in another case " + u.Email, func() (*flashsale.User, error) {
				return users.FindUserByEmail(t.Context(), "  "+flipCase(u.Email)+" ")
			}, shard, u},
		)
	}
	missingID := flashsale.NewUserID(77)
	lookups = append(lookups,
		lookup{"missing id", func() (*flashsale.User, error) { return users.FindUserByID(t.Context(), missingID) }, db.ShardOf(77), nil},
		lookup{"missing email", func() (*flashsale.User, error) { return users.FindUserByEmail(t.Context(), "nobody@example.com") },
			db.ShardOf(flashsale.EmailBucket("nobody@example.com")), nil},
	)
	// Every shard must be the answer for some lookup, or "one shard" proves little.
	seen := map[int]bool{}
	for _, l := range lookups {
		seen[l.shard] = true
	}
	if len(seen) < 3 {
		t.Fatalf("lookups reach shards %v; want at least 3 distinct", seen)
	}
	for _, l := range lookups {
		counter.Reset()
		got, err := l.find()
		if l.want == nil {
			if code := flashsale.ErrorCode(err); code != flashsale.ENOTFOUND {
				t.Errorf("%s: got error %v (code %s); want NOT_FOUND", l.name, err, code)
			}
		} else if err != nil {
			t.Errorf("%s: %v", l.name, err)
		} else if got.ID != l.want.ID || got.Email != l.want.Email || got.Name != l.want.Name || got.Role != l.want.Role {
			t.Errorf("%s: got %+v, want %+v", l.name, got, l.want)
		}
		want := make([]int, 4)
		want[l.shard] = 1
		wantStatements(t, counter, want)
	}
}

func TestCreateUserDuplicateEmailConflicts(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 4, postgres.Options{})
	users := postgres.NewUserStore(db)
	first := &flashsale.User{Email: "Dup.User@Example.com", Name: "First", Role: flashsale.RoleCustomer, PasswordHash: "x"}
	if err := users.CreateUser(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	if got, want := first.Email, "dup.user@example.com"; got != want {
		t.Errorf("stored email %q; want the normalized %q", got, want)
	}
	t.Run("again", func(t *testing.T) { // returns once its parallel subtests are done
		for _, email := range []string{"Dup.User@Example.com", "dup.user@example.com", "DUP.USER@EXAMPLE.COM", "  dup.user@example.com\t"} {
			t.Run(email, func(t *testing.T) {
				t.Parallel()
				u := &flashsale.User{Email: email, Name: "Second", Role: flashsale.RoleCustomer, PasswordHash: "y"}
				err := users.CreateUser(t.Context(), u)
				if got, want := flashsale.ErrorCode(err), flashsale.ECONFLICT; got != want {
					t.Errorf("CreateUser(%q): got code %s (%v); want %s", email, got, err, want)
				}
			})
		}
	})
	counts, err := users.CountUsersByShard(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := sum(counts); got != 1 {
		t.Errorf("%d users stored; want 1", got)
	}
	got, err := users.FindUserByEmail(t.Context(), "dup.user@example.com")
	if err != nil || got.Name != "First" {
		t.Errorf("after the conflicts got %+v, %v; want the first user", got, err)
	}
}

func TestFindUsersByIDs(t *testing.T) {
	t.Parallel()
	db, counter, _ := countedDB(t, 4)
	users := postgres.NewUserStore(db)
	created := createUsers(t, users, 30, "batch")

	// Keys out of creation order, with a repeat and missing ids on several shards.
	var ids []flashsale.UserID
	want := map[int]*flashsale.User{} // position -> user; absent: NOT_FOUND
	for i, u := range slices.Backward(created) {
		if i%3 == 0 {
			want[len(ids)] = u
			ids = append(ids, u.ID)
		}
		if i%7 == 0 {
			ids = append(ids, flashsale.NewUserID(u.ID.Bucket())) // same shard, no such user
		}
	}
	want[len(ids)] = created[0]
	ids = append(ids, created[0].ID) // a repeat

	counter.Reset()
	got, errs := users.FindUsersByIDs(t.Context(), ids)
	if len(got) != len(ids) || len(errs) != len(ids) {
		t.Fatalf("got %d users and %d errors for %d ids; want one each per id", len(got), len(errs), len(ids))
	}
	touched := make([]int, 4)
	for i, id := range ids {
		touched[db.ShardOf(id.Bucket())] = 1
		if w, ok := want[i]; ok {
			if errs[i] != nil || got[i] == nil || got[i].ID != w.ID || got[i].Email != w.Email {
				t.Errorf("key %d (%s): got %+v, %v; want user %s", i, id, got[i], errs[i], w.Email)
			}
		} else if code := flashsale.ErrorCode(errs[i]); code != flashsale.ENOTFOUND || got[i] != nil {
			t.Errorf("key %d (%s): got %+v, code %s; want nil, NOT_FOUND", i, id, got[i], code)
		}
	}
	wantStatements(t, counter, touched)

	counter.Reset()
	if got, errs := users.FindUsersByIDs(t.Context(), nil); len(got) != 0 || len(errs) != 0 {
		t.Errorf("no ids: got %d users, %d errors; want none", len(got), len(errs))
	}
	wantStatements(t, counter, []int{0, 0, 0, 0})
}

// createUsers inserts n customers with cheap fake hashes, eight at a time, and returns them
// in creation order.
func createUsers(t *testing.T, users *postgres.UserStore, n int, prefix string) []*flashsale.User {
	t.Helper()
	out := make([]*flashsale.User, n)
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range next {
				out[i] = &flashsale.User{
					Email: fmt.Sprintf("%s-%d@example.com", prefix, i), Name: fmt.Sprintf("User %d", i),
					Role: flashsale.RoleCustomer, PasswordHash: "not-a-real-hash",
				}
				errs[i] = users.CreateUser(t.Context(), out[i])
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("create user %d: %v", i, err)
		}
	}
	return out
}

// flipCase swaps the case of ASCII letters at random positions, keeping at least one flip.
func flipCase(s string) string {
	b := []byte(s)
	flipped := false
	for i, c := range b {
		if ('a' <= c && c <= 'z') && (!flipped || rand.IntN(2) == 0) {
			b[i] = c - 'a' + 'A'
			flipped = true
		}
	}
	return string(b)
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}
