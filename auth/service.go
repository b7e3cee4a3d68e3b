// Package auth registers users, checks passwords and issues and verifies tokens: short-lived
// HS256 access tokens and rotating refresh tokens whose reuse revokes their whole family.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/flashsale/flashsale"
)

// Config holds the service's settings.
type Config struct {
	Secret     []byte        // HMAC key for access tokens
	AccessTTL  time.Duration // default 15 minutes
	RefreshTTL time.Duration // default 30 days
	// BcryptCost is the password hashing cost; default bcrypt.DefaultCost. Tests and load
	// generation lower it, since registering thousands of buyers is otherwise all hashing.
	BcryptCost int
	// Revocations (nil: this process alone) announces revoked sign-ins to the other
	// replicas; whoever hears them there calls their Service's Revoked.
	Revocations flashsale.RevocationBus
}

// Service implements flashsale.AuthService.
type Service struct {
	users  flashsale.UserStore
	tokens flashsale.TokenStore
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	// dummyHash is compared against when an email is unknown, so that a login for an unknown
	// email takes as long as one with a wrong password and does not reveal which emails exist.
	dummyHash []byte
	verified  verifiedTokens
	revoked   revokedSessions
}

// NewService returns a service over the stores.
func NewService(users flashsale.UserStore, tokens flashsale.TokenStore, cfg Config, log *slog.Logger) (*Service, error) {
	if len(cfg.Secret) < 16 {
		return nil, errors.New("auth: the token secret must have at least 16 bytes")
	}
	if cfg.AccessTTL == 0 {
		cfg.AccessTTL = 15 * time.Minute
	}
	if cfg.RefreshTTL == 0 {
		cfg.RefreshTTL = 30 * 24 * time.Hour
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = bcrypt.DefaultCost
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("not a real password"), cfg.BcryptCost)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return &Service{users: users, tokens: tokens, cfg: cfg, log: log, now: time.Now, dummyHash: dummy}, nil
}

var _ flashsale.AuthService = (*Service)(nil)

// Register creates a customer and signs them in.
func (s *Service) Register(ctx context.Context, in flashsale.RegisterInput) (*flashsale.AuthPayload, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(in.Password), s.cfg.BcryptCost)
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	u := &flashsale.User{Email: in.Email, Name: in.Name, Role: flashsale.RoleCustomer, PasswordHash: string(hash)}
	if err := s.users.CreateUser(ctx, u); err != nil {
		return nil, err
	}
	return s.issue(ctx, u, newFamily())
}

// Login checks the password and signs the user in with a new token family.
func (s *Service) Login(ctx context.Context, email, password string) (*flashsale.AuthPayload, error) {
	denied := flashsale.Errorf(flashsale.EUNAUTHENTICATED, "wrong email or password")
	// Control characters are the client's mistake, which no account's email has: saying so
	// reveals nothing.
	email, err := flashsale.CheckEmail(email)
	if err != nil {
		return nil, err
	}
	if len(email) > flashsale.MaxEmailLen || len(password) > flashsale.MaxPasswordLen {
		return nil, denied
	}
	u, err := s.users.FindUserByEmail(ctx, email)
	if flashsale.ErrorCode(err) == flashsale.ENOTFOUND {
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(password))
		return nil, denied
	} else if err != nil {
		return nil, err
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		return nil, denied
	}
	return s.issue(ctx, u, newFamily())
}

// Refresh spends a refresh token for a new pair in the same family. Spending one twice means
// it leaked (or a client raced itself): the whole family is revoked, so whoever holds the
// newer token must sign in again, and its access tokens and subscriptions end everywhere.
func (s *Service) Refresh(ctx context.Context, token string) (*flashsale.AuthPayload, error) {
	denied := flashsale.Errorf(flashsale.EUNAUTHENTICATED, "refresh token is invalid or expired; sign in again")
	bucket, hash, ok := parseRefreshToken(token)
	if !ok {
		return nil, denied
	}
	refresh, nextHash := newRefreshToken(bucket) // the user's bucket, which the token names
	next := &flashsale.RefreshToken{Hash: nextHash, ExpiresAt: s.now().Add(s.cfg.RefreshTTL)}
	t, outcome, err := s.tokens.RotateRefreshToken(ctx, bucket, hash, next)
	if flashsale.ErrorCode(err) == flashsale.ENOTFOUND {
		return nil, denied
	} else if err != nil {
		return nil, err
	}
	switch outcome {
	case flashsale.Rotated:
	case flashsale.Reused:
		s.log.WarnContext(ctx, "refresh token reused; its family is revoked", "user", t.UserID.String(), "family", t.FamilyID)
		s.revoke(ctx, []string{t.FamilyID})
		return nil, denied
	default:
		return nil, denied
	}
	u, err := s.users.FindUserByID(ctx, t.UserID)
	if flashsale.ErrorCode(err) == flashsale.ENOTFOUND {
		return nil, denied
	} else if err != nil {
		return nil, err
	}
	access, err := s.signAccess(u, t.FamilyID)
	if err != nil {
		return nil, err
	}
	return &flashsale.AuthPayload{AccessToken: access, RefreshToken: refresh, User: u}, nil
}

// Logout revokes the family of the refresh token. Any token that is not one of ours, or whose
// family is already revoked, is answered the same way, without an error: signing out twice,
// or with a token from an old tab, is what a client does, and the answer must not tell
// anyone which tokens exist.
func (s *Service) Logout(ctx context.Context, token string) error {
	bucket, hash, ok := parseRefreshToken(token)
	if !ok {
		return nil
	}
	t, err := s.tokens.FindRefreshToken(ctx, bucket, hash)
	if flashsale.ErrorCode(err) == flashsale.ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	if t.RevokedAt != nil { // already revoked (and announced); no need to announce again
		return nil
	}
	if _, err := s.tokens.RevokeFamily(ctx, t.UserID, t.FamilyID); err != nil {
		return err
	}
	s.revoke(ctx, []string{t.FamilyID})
	return nil
}

// issue signs an access token and stores a refresh token as the first of a new family.
func (s *Service) issue(ctx context.Context, u *flashsale.User, family string) (*flashsale.AuthPayload, error) {
	access, err := s.signAccess(u, family)
	if err != nil {
		return nil, err
	}
	refresh, hash := newRefreshToken(u.ID.Bucket())
	err = s.tokens.CreateRefreshToken(ctx, &flashsale.RefreshToken{
		Hash: hash, UserID: u.ID, FamilyID: family, ExpiresAt: s.now().Add(s.cfg.RefreshTTL),
	})
	if err != nil {
		return nil, err
	}
	return &flashsale.AuthPayload{AccessToken: access, RefreshToken: refresh, User: u}, nil
}

// AdminStore is what EnsureAdmin needs beyond a flashsale.UserStore.
type AdminStore interface {
	UpdateCredentials(ctx context.Context, id flashsale.UserID, role flashsale.Role, passwordHash string) error
}

// EnsureAdmin makes sure an admin account with the email and password exists: it creates
// it, or promotes the existing user and sets the password when it no longer matches. A
// promoted or re-passworded account is signed out everywhere: its refresh tokens are revoked,
// and its access tokens refused, as they carry the old role or were won with the old password.
func (s *Service) EnsureAdmin(ctx context.Context, admins AdminStore, email, password string) (*flashsale.User, error) {
	email, err := flashsale.CheckEmail(email)
	if err != nil {
		return nil, fmt.Errorf("admin account: %w", err)
	}
	u, err := s.users.FindUserByEmail(ctx, email)
	if flashsale.ErrorCode(err) == flashsale.ENOTFOUND {
		in := flashsale.RegisterInput{Email: email, Password: password, Name: "Admin"}
		if err := in.Validate(); err != nil {
			return nil, fmt.Errorf("admin account: %w", err)
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cfg.BcryptCost)
		if err != nil {
			return nil, err
		}
		u = &flashsale.User{Email: in.Email, Name: in.Name, Role: flashsale.RoleAdmin, PasswordHash: string(hash)}
		err = s.users.CreateUser(ctx, u)
		if flashsale.ErrorCode(err) == flashsale.ECONFLICT { // another replica created it meanwhile
			return s.EnsureAdmin(ctx, admins, email, password)
		}
		return u, err
	} else if err != nil {
		return nil, err
	}
	if u.Role == flashsale.RoleAdmin && bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) == nil {
		return u, nil
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cfg.BcryptCost)
	if err != nil {
		return nil, err
	}
	u.Role, u.PasswordHash = flashsale.RoleAdmin, string(hash)
	if err := admins.UpdateCredentials(ctx, u.ID, u.Role, u.PasswordHash); err != nil {
		return nil, err
	}
	families, err := s.tokens.RevokeUserTokens(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("sign out the promoted account: %w", err)
	}
	s.revoke(ctx, families)
	return u, nil
}
