package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale"
)

// TokenStore implements flashsale.TokenStore. Every operation on a family's tokens that may
// race a revocation (a rotation, a revocation) first locks the family's row, so the two run one
// after the other: a rotation that commits first is revoked with the rest of the family, and
// one that comes second finds the family revoked and adds nobody.
type TokenStore struct{ db *DB }

// NewTokenStore returns a store over db.
func NewTokenStore(db *DB) *TokenStore { return &TokenStore{db: db} }

var _ flashsale.TokenStore = (*TokenStore)(nil)

// CreateRefreshToken stores t and its new family on its user's shard, in one statement.
func (s *TokenStore) CreateRefreshToken(ctx context.Context, t *flashsale.RefreshToken) error {
	bucket := t.UserID.Bucket()
	_, err := s.db.poolFor(bucket).Exec(ctx,
		`WITH family AS (
			INSERT INTO refresh_families (family_id, bucket, user_id) VALUES ($4, $2, $3)
			RETURNING family_id
		)
		INSERT INTO refresh_tokens (token_hash, bucket, user_id, family_id, expires_at)
		SELECT $1, $2, $3, family_id, $5 FROM family`,
		t.Hash, bucket, t.UserID, t.FamilyID, t.ExpiresAt)
	if err != nil {
		return fmt.Errorf("insert refresh token: %w", err)
	}
	return nil
}

// tokenColumns read a token joined with its family (as f): a token of a revoked family reads
// revoked.
const tokenColumns = `t.user_id, t.family_id::text, t.expires_at, t.used_at, coalesce(t.revoked_at, f.revoked_at)`

func scanToken(row pgx.Row, t *flashsale.RefreshToken) error {
	return row.Scan(&t.UserID, &t.FamilyID, &t.ExpiresAt, &t.UsedAt, &t.RevokedAt)
}

// FindRefreshToken reads the token with the hash.
func (s *TokenStore) FindRefreshToken(ctx context.Context, bucket int, hash []byte) (*flashsale.RefreshToken, error) {
	t := &flashsale.RefreshToken{Hash: hash}
	err := scanToken(s.db.poolFor(bucket).QueryRow(ctx,
		`SELECT `+tokenColumns+` FROM refresh_tokens t JOIN refresh_families f USING (family_id)
		 WHERE t.token_hash = $1`, hash), t)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, flashsale.Errorf(flashsale.ENOTFOUND, "refresh token not found")
	} else if err != nil {
		return nil, fmt.Errorf("read refresh token: %w", err)
	}
	return t, nil
}

// RotateRefreshToken spends the token and stores next in one transaction that holds the
// family's lock. A token spent before means it leaked, or its client raced itself: the family
// is revoked in the same transaction, so after any number of concurrent spends of one token
// no token of the family is live.
func (s *TokenStore) RotateRefreshToken(ctx context.Context, bucket int, hash []byte, next *flashsale.RefreshToken) (*flashsale.RefreshToken, flashsale.Rotation, error) {
	var t *flashsale.RefreshToken
	var outcome flashsale.Rotation
	err := pgx.BeginFunc(ctx, s.db.poolFor(bucket), func(tx pgx.Tx) error {
		t, outcome = &flashsale.RefreshToken{Hash: hash}, 0
		// Lock the family first; the token is read after the lock, so it is as the last
		// holder of the lock left it.
		var familyRevoked bool
		err := tx.QueryRow(ctx,
			`SELECT f.revoked_at IS NOT NULL FROM refresh_families f
			 WHERE f.family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)
			 FOR UPDATE`, hash).Scan(&familyRevoked)
		if errors.Is(err, pgx.ErrNoRows) {
			return flashsale.Errorf(flashsale.ENOTFOUND, "refresh token not found")
		} else if err != nil {
			return fmt.Errorf("lock token family: %w", err)
		}
		err = scanToken(tx.QueryRow(ctx,
			`UPDATE refresh_tokens t SET used_at = now() FROM refresh_families f
			 WHERE t.token_hash = $1 AND f.family_id = t.family_id
			   AND t.used_at IS NULL AND t.revoked_at IS NULL AND f.revoked_at IS NULL AND t.expires_at > now()
			 RETURNING `+tokenColumns, hash), t)
		if err == nil {
			next.UserID, next.FamilyID = t.UserID, t.FamilyID
			_, err = tx.Exec(ctx,
				`INSERT INTO refresh_tokens (token_hash, bucket, user_id, family_id, expires_at) VALUES ($1, $2, $3, $4, $5)`,
				next.Hash, next.UserID.Bucket(), next.UserID, next.FamilyID, next.ExpiresAt)
			if err != nil {
				return fmt.Errorf("insert refresh token: %w", err)
			}
			outcome = flashsale.Rotated
			return nil
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("spend refresh token: %w", err)
		}
		err = scanToken(tx.QueryRow(ctx,
			`SELECT `+tokenColumns+` FROM refresh_tokens t JOIN refresh_families f USING (family_id)
			 WHERE t.token_hash = $1`, hash), t)
		if err != nil {
			return fmt.Errorf("read refresh token: %w", err)
		}
		if t.UsedAt == nil || t.RevokedAt != nil || familyRevoked {
			outcome = flashsale.Refused
			return nil
		}
		outcome = flashsale.Reused
		_, err = revokeFamily(ctx, tx, t.FamilyID)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return t, outcome, nil
}

// RevokeFamily revokes the family and every token of it on the user's shard.
func (s *TokenStore) RevokeFamily(ctx context.Context, user flashsale.UserID, familyID string) (bool, error) {
	var revoked bool
	err := pgx.BeginFunc(ctx, s.db.poolFor(user.Bucket()), func(tx pgx.Tx) (err error) {
		revoked, err = revokeFamily(ctx, tx, familyID)
		return err
	})
	return revoked, err
}

func revokeFamily(ctx context.Context, tx pgx.Tx, familyID string) (bool, error) {
	// The family's row first: its lock waits for a rotation in flight, whose new token
	// the second statement then sees.
	tag, err := tx.Exec(ctx,
		`UPDATE refresh_families SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL`, familyID)
	if err != nil {
		return false, fmt.Errorf("revoke token family: %w", err)
	}
	if _, err := tx.Exec(ctx,
		`UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL`, familyID); err != nil {
		return false, fmt.Errorf("revoke tokens of family: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// RevokeUserTokens revokes every family of the user, and so every refresh token, under the
// families' locks.
func (s *TokenStore) RevokeUserTokens(ctx context.Context, user flashsale.UserID) ([]string, error) {
	var families []string
	err := pgx.BeginFunc(ctx, s.db.poolFor(user.Bucket()), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx,
			`UPDATE refresh_families SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL
			 RETURNING family_id::text`, user)
		if err != nil {
			return fmt.Errorf("revoke token families of user %d: %w", user, err)
		}
		if families, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return fmt.Errorf("revoke token families of user %d: %w", user, err)
		}
		if _, err := tx.Exec(ctx,
			`UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL`, user); err != nil {
			return fmt.Errorf("revoke tokens of user %d: %w", user, err)
		}
		return nil
	})
	return families, err
}
