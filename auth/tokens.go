package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"strconv"
	"strings"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/flashsale/flashsale"
)

// The issuer and audience every access token carries and every check demands.
const (
	Issuer   = "flashsale"
	Audience = "flashsale-api"
)

type claims struct {
	jwt.RegisteredClaims
	Role flashsale.Role `json:"role"`
}

func (s *Service) signAccess(u *flashsale.User) (string, error) {
	now := s.now()
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   u.ID.String(),
			Audience:  jwt.ClaimStrings{Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.AccessTTL)),
		},
		Role: u.Role,
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.cfg.Secret)
}

// Authenticate verifies an access token: HS256 only (so "none" and RS/HS confusion fail),
// with a valid signature, issuer, audience and expiry.
func (s *Service) Authenticate(_ context.Context, token string) (flashsale.Viewer, error) {
	denied := flashsale.Errorf(flashsale.EUNAUTHENTICATED, "access token is invalid or expired")
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return s.cfg.Secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithAudience(Audience),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.now),
	)
	if err != nil {
		return flashsale.Viewer{}, denied
	}
	id, err := flashsale.ParseUserID(c.Subject)
	if err != nil || (c.Role != flashsale.RoleCustomer && c.Role != flashsale.RoleAdmin) {
		return flashsale.Viewer{}, denied
	}
	return flashsale.Viewer{UserID: id, Role: c.Role}, nil
}

// A refresh token reads "rt_<bucket>_<secret>": the bucket routes it to its user's shard
// without a scatter; only its SHA-256 is stored.
func newRefreshToken(bucket int) (token string, hash []byte) {
	token = "rt_" + strconv.Itoa(bucket) + "_" + rand.Text() // 128 random bits
	sum := sha256.Sum256([]byte(token))
	return token, sum[:]
}

func parseRefreshToken(token string) (bucket int, hash []byte, ok bool) {
	parts := strings.SplitN(token, "_", 3)
	if len(token) > 256 || len(parts) != 3 || parts[0] != "rt" {
		return 0, nil, false
	}
	bucket, err := strconv.Atoi(parts[1])
	if err != nil || bucket < 0 || bucket >= flashsale.Buckets {
		return 0, nil, false
	}
	sum := sha256.Sum256([]byte(token))
	return bucket, sum[:], true
}

func newFamily() string { return uuid.NewString() }
