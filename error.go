package flashsale

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Error codes, exactly as they appear in a GraphQL error's extensions.code.
const (
	EUNAUTHENTICATED = "UNAUTHENTICATED"
	EFORBIDDEN       = "FORBIDDEN"
	EINVALID         = "BAD_USER_INPUT"
	ENOTFOUND        = "NOT_FOUND"
	ECONFLICT        = "CONFLICT"
	ESOLDOUT         = "SOLD_OUT"
	ESALENOTACTIVE   = "SALE_NOT_ACTIVE"
	ELIMITEXCEEDED   = "LIMIT_EXCEEDED"
	ERATELIMITED     = "RATE_LIMITED"
	ECOMPLEXITY      = "COMPLEXITY_LIMIT_EXCEEDED"
	EUNAVAILABLE     = "UNAVAILABLE" // a dependency is recovering: the same request succeeds later
	EINTERNAL        = "INTERNAL"
)

// Error is an error a user may see: a code from the list above and a message safe to show.
// Any other error is internal; it is logged with its cause and shown as "internal error".
type Error struct {
	Code    string
	Message string
	// RetryAfter, when set (RATE_LIMITED, UNAVAILABLE), is how long the client should wait
	// before sending the same request again; it is shown as extensions.retryAfter in seconds.
	RetryAfter time.Duration
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("flashsale: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the code and a formatted, user-safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Retryable returns an *Error with the code and message that tells the client to try again
// after d.
func Retryable(code string, d time.Duration, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), RetryAfter: d}
}

// RetryAfterSeconds returns the whole seconds (at least 1) a client should wait before
// retrying err, and 0 when err says nothing of it.
func RetryAfterSeconds(err error) int {
	var e *Error
	if !errors.As(err, &e) || e.RetryAfter <= 0 {
		return 0
	}
	return max(1, int(math.Ceil(e.RetryAfter.Seconds())))
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for any other
// error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-safe message of err: the *Error's own, or "internal error".
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
