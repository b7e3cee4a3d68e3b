package flashsale

import (
	"context"
	"time"
)

// Viewer is who is making a request, as proven by their access token.
type Viewer struct {
	UserID UserID
	Role   Role
}

// AuthPayload is what a successful register, login or refresh returns.
type AuthPayload struct {
	AccessToken  string
	RefreshToken string
	User         *User
}

// AuthService registers users and issues and checks their tokens.
type AuthService interface {
	// Register creates a customer. BAD_USER_INPUT, CONFLICT (email taken).
	Register(ctx context.Context, in RegisterInput) (*AuthPayload, error)
	// Login checks the password. UNAUTHENTICATED for an unknown email or a wrong password alike.
	Login(ctx context.Context, email, password string) (*AuthPayload, error)
	// Refresh spends a refresh token for a new pair. UNAUTHENTICATED if the token is unknown,
	// expired or revoked; spending a token twice revokes every token of its family.
	Refresh(ctx context.Context, refreshToken string) (*AuthPayload, error)
	// Authenticate checks an access token. UNAUTHENTICATED.
	Authenticate(ctx context.Context, accessToken string) (Viewer, error)
}

// RefreshToken is a stored refresh token. Only its hash is kept. Tokens issued from one login
// form a family; each refresh spends one and issues the next.
type RefreshToken struct {
	Hash      []byte
	UserID    UserID
	FamilyID  string
	ExpiresAt time.Time
	UsedAt    *time.Time
	RevokedAt *time.Time
}

// TokenStore keeps refresh tokens on their user's shard.
type TokenStore interface {
	// CreateRefreshToken stores t.
	CreateRefreshToken(ctx context.Context, t *RefreshToken) error
	// SpendRefreshToken marks the token with the hash spent if it is live (unspent, unrevoked,
	// unexpired) and returns it with spent=true. A token that exists but is not live comes
	// back as stored with spent=false. NOT_FOUND for an unknown hash.
	SpendRefreshToken(ctx context.Context, bucket int, hash []byte) (t *RefreshToken, spent bool, err error)
	// RevokeFamily revokes every token of a family.
	RevokeFamily(ctx context.Context, user UserID, familyID string) error
}
