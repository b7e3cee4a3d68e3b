package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale"
)

// UserStore implements flashsale.UserStore.
type UserStore struct{ db *DB }

// NewUserStore returns a store over db.
func NewUserStore(db *DB) *UserStore { return &UserStore{db: db} }

var _ flashsale.UserStore = (*UserStore)(nil)

const userColumns = `id, email, name, role, password_hash, created_at`

func scanUser(row pgx.Row) (*flashsale.User, error) {
	var u flashsale.User
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.Role, &u.PasswordHash, &u.CreatedAt)
	return &u, err
}

// CreateUser inserts u in the bucket of its email, where the unique index on email makes the
// email unique across all shards.
func (s *UserStore) CreateUser(ctx context.Context, u *flashsale.User) error {
	u.Email = flashsale.NormalizeEmail(u.Email)
	bucket := flashsale.EmailBucket(u.Email)
	u.ID = flashsale.NewUserID(bucket)
	err := s.db.poolFor(bucket).QueryRow(ctx,
		`INSERT INTO users (id, bucket, email, name, role, password_hash) VALUES ($1, $2, $3, $4, $5, $6)
		 RETURNING created_at`,
		u.ID, bucket, u.Email, u.Name, u.Role, u.PasswordHash).Scan(&u.CreatedAt)
	if isUniqueViolation(err, "users_email_key") {
		return flashsale.Errorf(flashsale.ECONFLICT, "an account with this email already exists")
	} else if err != nil {
		return fmt.Errorf("insert user: %w", err)
	}
	return nil
}

// FindUserByID reads the one shard that holds the id's bucket.
func (s *UserStore) FindUserByID(ctx context.Context, id flashsale.UserID) (*flashsale.User, error) {
	u, err := scanUser(s.db.poolFor(id.Bucket()).QueryRow(ctx,
		`SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, flashsale.Errorf(flashsale.ENOTFOUND, "user not found")
	} else if err != nil {
		return nil, fmt.Errorf("find user %d: %w", id, err)
	}
	return u, nil
}

// FindUserByEmail reads the one shard that holds the email's bucket.
func (s *UserStore) FindUserByEmail(ctx context.Context, email string) (*flashsale.User, error) {
	email = flashsale.NormalizeEmail(email)
	u, err := scanUser(s.db.poolFor(flashsale.EmailBucket(email)).QueryRow(ctx,
		`SELECT `+userColumns+` FROM users WHERE email = $1`, email))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, flashsale.Errorf(flashsale.ENOTFOUND, "user not found")
	} else if err != nil {
		return nil, fmt.Errorf("find user by email: %w", err)
	}
	return u, nil
}

// FindUsersByIDs sends one statement per shard touched.
func (s *UserStore) FindUsersByIDs(ctx context.Context, ids []flashsale.UserID) ([]*flashsale.User, []error) {
	return findByIDs(ctx, s.db, ids, flashsale.UserID.Bucket,
		`SELECT `+userColumns+` FROM users WHERE id = ANY($1)`, scanUser,
		func(u *flashsale.User) flashsale.UserID { return u.ID }, "user")
}

// UpdateCredentials sets a user's role and password hash; the admin account is ensured with it.
func (s *UserStore) UpdateCredentials(ctx context.Context, id flashsale.UserID, role flashsale.Role, passwordHash string) error {
	tag, err := s.db.poolFor(id.Bucket()).Exec(ctx,
		`UPDATE users SET role = $2, password_hash = $3 WHERE id = $1`, id, role, passwordHash)
	if err != nil {
		return fmt.Errorf("update credentials of user %d: %w", id, err)
	} else if tag.RowsAffected() == 0 {
		return flashsale.Errorf(flashsale.ENOTFOUND, "user not found")
	}
	return nil
}

// CountUsersByShard returns how many users each shard holds (tests and operators use it to
// see the spread).
func (s *UserStore) CountUsersByShard(ctx context.Context) ([]int, error) {
	return scatter(ctx, s.db, s.db.allShards(), func(ctx context.Context, shard int) (int, error) {
		var n int
		err := s.db.pools[shard].QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n)
		return n, err
	})
}
