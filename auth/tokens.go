package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	// Session is the refresh-token family the token was issued in, so that revoking the
	// family reaches its access tokens too.
	Session string `json:"sid,omitempty"`
}

func (s *Service) signAccess(u *flashsale.User, family string) (string, error) {
	now := s.now()
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   u.ID.String(),
			Audience:  jwt.ClaimStrings{Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.AccessTTL)),
		},
		Role:    u.Role,
		Session: family,
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.cfg.Secret)
	if err == nil {
		// This process just signed it, so its first request here needs no verifying: buyers
		// sign in before a sale and then all use their new tokens at once when it opens.
		s.verified.put(token, flashsale.Viewer{UserID: u.ID, Role: u.Role, Session: family, Expires: c.ExpiresAt.Time})
	}
	return token, err
}

// Authenticate verifies an access token: HS256 only (so "none" and RS/HS confusion fail),
// with a valid signature, issuer, audience and expiry. In a flash sale every buyer sends the
// same token many times a second, so a verified token is remembered until it expires rather
// than having its HMAC and claims checked again. Only tokens that passed every check are
// remembered, so a forged one is checked (and refused) every time. A token of a revoked
// sign-in is refused, remembered or not; while no sign-in was revoked in the last AccessTTL,
// that check is one atomic load.
func (s *Service) Authenticate(_ context.Context, token string) (flashsale.Viewer, error) {
	now := s.now()
	v, ok := s.verified.get(token, now)
	if !ok {
		var err error
		if v, err = s.verify(token); err != nil {
			return v, err
		}
		s.verified.put(token, v)
	}
	if s.revoked.has(v.Session, now) {
		return flashsale.Viewer{}, flashsale.ErrSignedOut
	}
	return v, nil
}

func (s *Service) verify(token string) (flashsale.Viewer, error) {
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
	return flashsale.Viewer{UserID: id, Role: c.Role, Session: c.Session, Expires: c.ExpiresAt.Time}, nil
}

// verifiedTokens remembers verified access tokens until they expire, up to a bound past which
// it starts over (the cost of a miss is one HMAC, so a crude bound is enough). It is a
// sync.Map because a sale's opening adds many tokens while every request reads, and behind
// one mutex the readers would queue behind each writer.
type verifiedTokens struct {
	m sync.Map // token → *flashsale.Viewer
	n atomic.Int64
}

const maxVerifiedTokens = 100_000

func (t *verifiedTokens) get(token string, now time.Time) (flashsale.Viewer, bool) {
	v, ok := t.m.Load(token)
	if !ok {
		return flashsale.Viewer{}, false
	}
	viewer := v.(*flashsale.Viewer)
	if !now.Before(viewer.Expires) {
		return flashsale.Viewer{}, false
	}
	return *viewer, true
}

// put remembers v until v.Expires.
func (t *verifiedTokens) put(token string, v flashsale.Viewer) {
	if t.n.Add(1) > maxVerifiedTokens {
		t.m.Clear()
		t.n.Store(1)
	}
	t.m.Store(token, &v)
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
