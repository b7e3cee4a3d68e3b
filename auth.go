package flashsale

import (
	"context"
	"time"
)

// Viewer is who is making a request, as proven by their access token.
type Viewer struct {
	UserID UserID
	Role   Role
	// Session is the sign-in the access token was issued in (its refresh-token family; empty
	// for a token that names none), and Expires when the token lapses. A websocket lives no
	// longer than either.
	Session string
	Expires time.Time
}

// Why a websocket's session ends: the causes of the context AuthService.SessionContext
// returns. Both are UNAUTHENTICATED; the message is what the client is told.
var (
	ErrAccessExpired = Errorf(EUNAUTHENTICATED, "access token expired; refresh it and reconnect")
	ErrSignedOut     = Errorf(EUNAUTHENTICATED, "signed out: the session was revoked; sign in again")
)

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
	// Logout revokes the family of the refresh token: no token of it refreshes again, its
	// access tokens are refused, and its subscriptions end. An unknown, malformed, spent or
	// already revoked token is no error, so the answer says nothing about the token.
	Logout(ctx context.Context, refreshToken string) error
	// Authenticate checks an access token. UNAUTHENTICATED, also for a token of a revoked
	// sign-in.
	Authenticate(ctx context.Context, accessToken string) (Viewer, error)
	// SessionContext returns a context that ends when v's access token expires (cause
	// ErrAccessExpired) or its sign-in is revoked, on any replica (cause ErrSignedOut), and
	// its cancel.
	SessionContext(ctx context.Context, v Viewer) (context.Context, context.CancelFunc)
}

// RevocationBus tells every API replica of revoked sign-ins, so that each refuses their access
// tokens and ends their websockets at once, not when the tokens expire.
type RevocationBus interface {
	// PublishRevoked announces the families as revoked.
	PublishRevoked(ctx context.Context, families []string) error
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

// Rotation is what presenting a refresh token for a new one came to.
type Rotation int

// The outcomes of a rotation.
const (
	// Rotated: the token was live; it is now spent and its successor stored.
	Rotated Rotation = iota + 1
	// Reused: the token had been spent before, so it leaked or its client raced itself; its
	// whole family is now revoked.
	Reused
	// Refused: the token is expired or revoked, or its family is.
	Refused
)

// TokenStore keeps refresh tokens, and the families they belong to, on their user's shard.
// A revoked family refuses new members: once RevokeFamily (or a detected reuse) returns, no
// token of the family is live, whatever rotations ran beside it.
type TokenStore interface {
	// CreateRefreshToken stores t as the first token of a new family.
	CreateRefreshToken(ctx context.Context, t *RefreshToken) error
	// FindRefreshToken returns the token with the hash; a token of a revoked family comes
	// back revoked. NOT_FOUND.
	FindRefreshToken(ctx context.Context, bucket int, hash []byte) (*RefreshToken, error)
	// RotateRefreshToken spends the live token with the hash and stores next (its Hash and
	// ExpiresAt; UserID and FamilyID are filled in) as its successor, atomically. It returns
	// the presented token as stored and the outcome; next is stored only when Rotated.
	// NOT_FOUND for an unknown hash.
	RotateRefreshToken(ctx context.Context, bucket int, hash []byte, next *RefreshToken) (*RefreshToken, Rotation, error)
	// RevokeFamily revokes a family and reports whether it was live until now.
	RevokeFamily(ctx context.Context, user UserID, familyID string) (bool, error)
	// RevokeUserTokens revokes every family of the user and returns those that were live.
	RevokeUserTokens(ctx context.Context, user UserID) ([]string, error)
}
