package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale"
)

// TokenStore implements flashsale.TokenStore.
type TokenStore struct{ db *DB }

// NewTokenStore returns a store over db.
func NewTokenStore(db *DB) *TokenStore { return &TokenStore{db: db} }

var _ flashsale.TokenStore = (*TokenStore)(nil)

// CreateRefreshToken stores t on its user's shard.
func (s *TokenStore) CreateRefreshToken(ctx context.Context, t *flashsale.RefreshToken) error {
	bucket := t.UserID.Bucket()
	_, err := s.db.poolFor(bucket).Exec(ctx,
		`INSERT INTO refresh_tokens (token_hash, bucket, user_id, family_id, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		t.Hash, bucket, t.UserID, t.FamilyID, t.ExpiresAt)
	if err != nil {
		return fmt.Errorf("insert refresh token: %w", err)
	}
	return nil
}

// SpendRefreshToken spends a live token with one conditional UPDATE, so two concurrent
// refreshes with the same token cannot both succeed.
func (s *TokenStore) SpendRefreshToken(ctx context.Context, bucket int, hash []byte) (*flashsale.RefreshToken, bool, error) {
	pool := s.db.poolFor(bucket)
	t := &flashsale.RefreshToken{Hash: hash}
	err := pool.QueryRow(ctx,
		`UPDATE refresh_tokens SET used_at = now()
		 WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
		 RETURNING user_id, family_id::text, expires_at, used_at`, hash).
		Scan(&t.UserID, &t.FamilyID, &t.ExpiresAt, &t.UsedAt)
	if err == nil {
		return t, true, nil
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return nil, false, fmt.Errorf("spend refresh token: %w", err)
	}
	err = pool.QueryRow(ctx,
		`SELECT user_id, family_id::text, expires_at, used_at, revoked_at FROM refresh_tokens WHERE token_hash = $1`, hash).
		Scan(&t.UserID, &t.FamilyID, &t.ExpiresAt, &t.UsedAt, &t.RevokedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, flashsale.Errorf(flashsale.ENOTFOUND, "refresh token not found")
	} else if err != nil {
		return nil, false, fmt.Errorf("read refresh token: %w", err)
	}
	return t, false, nil
}

// RevokeFamily revokes every token of the family on the user's shard.
func (s *TokenStore) RevokeFamily(ctx context.Context, user flashsale.UserID, familyID string) error {
	_, err := s.db.poolFor(user.Bucket()).Exec(ctx,
		`UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL`, familyID)
	if err != nil {
		return fmt.Errorf("revoke token family: %w", err)
	}
	return nil
}
