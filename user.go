package flashsale

import (
	"context"
	"hash/fnv"
	"io"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Role is what a user may do: customers buy, admins also run the catalog and the sales.
type Role string

// The roles.
const (
	RoleCustomer Role = "CUSTOMER"
	RoleAdmin    Role = "ADMIN"
)

// Has reports whether a holder of r may act as want; an admin may act as anyone.
func (r Role) Has(want Role) bool { return r == want || r == RoleAdmin }

// MarshalGQL writes the role as a GraphQL enum.
func (r Role) MarshalGQL(w io.Writer) { enumMarshal(w, string(r)) }

// UnmarshalGQL reads a GraphQL enum.
func (r *Role) UnmarshalGQL(v any) error {
	s, err := enumUnmarshal(v, func(s string) bool { return s == "CUSTOMER" || s == "ADMIN" }, "role")
	*r = Role(s)
	return err
}

// User is a shopper or an admin. A user's rows live in the bucket of their email, so the
// registration's uniqueness check and a login each touch exactly one shard.
type User struct {
	ID           UserID
	Email        string
	Name         string
	Role         Role
	PasswordHash string
	CreatedAt    time.Time
}

// NormalizeEmail is the one form an email is stored, compared and hashed in: trimmed,
// lower-cased and in Unicode NFC, so "A@x.com " and "a@x.com" (or an accented letter typed
// composed or decomposed) are one account, one shard and one rate-limit key.
func NormalizeEmail(email string) string {
	return norm.NFC.String(strings.ToLower(strings.TrimSpace(email)))
}

// EmailBucket returns the bucket of the user with the (normalized) email.
func EmailBucket(email string) int {
	h := fnv.New64a()
	h.Write([]byte(email))
	return int(h.Sum64() % Buckets)
}

// Input limits, shared by validation and the schema's documentation.
const (
	MaxEmailLen    = 254
	MaxNameLen     = 200
	MinPasswordLen = 8
	MaxPasswordLen = 72 // bcrypt reads no further
)

// RegisterInput is what a new user gives.
type RegisterInput struct {
	Email    string
	Password string
	Name     string
}

// Validate normalizes the email and checks every field; the error is BAD_USER_INPUT, naming
// the field.
func (in *RegisterInput) Validate() error {
	in.Name = strings.TrimSpace(in.Name)
	email, err := CheckEmail(in.Email)
	if err != nil {
		return err
	}
	in.Email = email
	switch {
	case len(in.Email) > MaxEmailLen:
		return Errorf(EINVALID, "email is longer than %d characters", MaxEmailLen)
	case !validEmail(in.Email):
		return Errorf(EINVALID, "email is not a valid address")
	case !ValidText(in.Password):
		return Errorf(EINVALID, "password must be valid UTF-8 without NUL characters")
	case utf8.RuneCountInString(in.Password) < MinPasswordLen:
		return Errorf(EINVALID, "password must have at least %d characters", MinPasswordLen)
	case len(in.Password) > MaxPasswordLen:
		return Errorf(EINVALID, "password must have at most %d bytes", MaxPasswordLen)
	}
	if err := CheckText("name", in.Name); err != nil {
		return err
	}
	switch {
	case in.Name == "":
		return Errorf(EINVALID, "name is required")
	case utf8.RuneCountInString(in.Name) > MaxNameLen:
		return Errorf(EINVALID, "name is longer than %d characters", MaxNameLen)
	}
	return nil
}

// CheckEmail returns the email in its normal form, or BAD_USER_INPUT if it is not valid UTF-8
// or holds control characters. Every lookup by email checks this much (PostgreSQL refuses a
// NUL); registering also checks the length and the address's shape.
func CheckEmail(email string) (string, error) {
	if !utf8.ValidString(email) {
		return "", Errorf(EINVALID, "email must be valid UTF-8")
	}
	email = NormalizeEmail(email) // surrounding spaces and tabs are trimmed, not refused
	if err := CheckText("email", email); err != nil {
		return "", err
	}
	return email, nil
}

func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && strings.Contains(s[strings.LastIndexByte(s, '@'):], ".")
}

// UserStore keeps users on their shards.
type UserStore interface {
	// CreateUser inserts u with a fresh id in its email's bucket. CONFLICT if the email is taken.
	CreateUser(ctx context.Context, u *User) error
	// FindUserByID returns NOT_FOUND if there is no such user.
	FindUserByID(ctx context.Context, id UserID) (*User, error)
	// FindUserByEmail returns NOT_FOUND if there is no such user. It reads one shard.
	FindUserByEmail(ctx context.Context, email string) (*User, error)
	// FindUsersByIDs returns one user or error per id, in the order of ids, with one
	// statement per shard touched; a missing id gets NOT_FOUND.
	FindUsersByIDs(ctx context.Context, ids []UserID) ([]*User, []error)
	// ListUsers returns up to first users with ids after `after` (0: from the start) whose
	// email or name starts with prefix (see UserSearch; "" matches everyone), in id order
	// merged across shards, and whether more follow. A failing shard fails the call.
	ListUsers(ctx context.Context, prefix string, first int, after UserID) ([]*User, bool, error)
}
