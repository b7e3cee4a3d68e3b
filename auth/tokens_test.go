package auth

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
)

// A token this process signs is remembered as verified at once, for its buyer and role and
// until it expires, exactly as one it verified would be.
func TestASignedTokenIsRememberedUntilItExpires(t *testing.T) {
	t.Parallel()
	s, err := NewService(nil, nil, Config{Secret: []byte("0123456789abcdef0123456789abcdef"), AccessTTL: time.Minute, BcryptCost: 4},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s.now = func() time.Time { return now }
	u := &flashsale.User{ID: flashsale.NewUserID(3), Role: flashsale.RoleAdmin}
	token, err := s.signAccess(u, "family-1")
	if err != nil {
		t.Fatal(err)
	}
	remembered, ok := s.verified.get(token, now)
	if !ok || remembered.UserID != u.ID || remembered.Role != u.Role || remembered.Session != "family-1" ||
		remembered.Expires.Unix() != now.Add(time.Minute).Unix() {
		t.Fatalf("just signed: remembered %+v, %v; want %s ADMIN of family-1 until %v", remembered, ok, u.ID, now.Add(time.Minute))
	}
	verified, err := s.verify(token)
	if err != nil || !verified.Expires.Equal(remembered.Expires) || verified.Session != remembered.Session ||
		verified.UserID != remembered.UserID || verified.Role != remembered.Role {
		t.Errorf("verify = %+v, %v; want what was remembered, %+v", verified, err, remembered)
	}
	if _, ok := s.verified.get(token, now.Add(time.Minute)); ok {
		t.Error("remembered at its expiry; want it forgotten")
	}
	now = now.Add(time.Minute)
	if _, err := s.Authenticate(t.Context(), token); flashsale.ErrorCode(err) != flashsale.EUNAUTHENTICATED {
		t.Errorf("Authenticate an expired token: %v; want UNAUTHENTICATED", err)
	}
}

// Past its bound the memory starts over rather than grow.
func TestVerifiedTokensStayBounded(t *testing.T) {
	t.Parallel()
	var v verifiedTokens
	exp := time.Now().Add(time.Hour)
	for i := range maxVerifiedTokens + 10 {
		v.put(strconv.Itoa(i), flashsale.Viewer{Expires: exp})
	}
	n := 0
	v.m.Range(func(any, any) bool { n++; return true })
	if n > maxVerifiedTokens || n == 0 {
		t.Errorf("%d tokens remembered after %d puts; want at most %d", n, maxVerifiedTokens+10, maxVerifiedTokens)
	}
}

// BenchmarkAuthenticate is every request's cost of its bearer token, remembered as verified:
// with no sign-in revoked lately (the usual case, one atomic load more than the memory), and
// with a thousand revoked in the last AccessTTL (a map lookup more).
func BenchmarkAuthenticate(b *testing.B) {
	for _, revoked := range []int{0, 1000} {
		b.Run("revoked="+strconv.Itoa(revoked), func(b *testing.B) {
			s, err := NewService(nil, nil, Config{Secret: []byte("0123456789abcdef0123456789abcdef"), BcryptCost: 4},
				slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				b.Fatal(err)
			}
			token, err := s.signAccess(&flashsale.User{ID: flashsale.NewUserID(3), Role: flashsale.RoleCustomer}, "family")
			if err != nil {
				b.Fatal(err)
			}
			for i := range revoked {
				s.Revoked([]string{"revoked-" + strconv.Itoa(i)})
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Authenticate(context.Background(), token); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
