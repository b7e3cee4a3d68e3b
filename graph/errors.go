package graph

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/flashsale/flashsale"
)

// presentError gives every error an extensions.code from the contract's list. Domain errors
// keep their code and message. Errors gqlgen raises itself (parse, validation, argument
// coercion) are the client's: BAD_USER_INPUT, or the code gqlgen set when it is on the list.
// Resolver errors that are not domain errors never reach here: internalErrors has already
// logged them and put "internal error" in their place.
func presentError(ctx context.Context, err error) *gqlerror.Error {
	gqlErr := graphql.DefaultErrorPresenter(ctx, err)
	var fe *flashsale.Error
	if errors.As(err, &fe) {
		gqlErr.Message = fe.Message
		setCode(gqlErr, fe.Code)
		if s := flashsale.RetryAfterSeconds(fe); s > 0 {
			gqlErr.Extensions["retryAfter"] = s
		}
		return gqlErr
	}
	if strings.HasPrefix(gqlErr.Message, "json request body could not be decoded") {
		// gqlgen's message quotes the whole body back, passwords included.
		gqlErr.Message = "request body is not valid JSON"
	}
	code, _ := gqlErr.Extensions["code"].(string)
	switch code {
	case flashsale.ECOMPLEXITY, flashsale.EINVALID:
	default: // GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, PERSISTED_QUERY_NOT_FOUND, coercion
		code = flashsale.EINVALID
	}
	setCode(gqlErr, code)
	return gqlErr
}

func setCode(e *gqlerror.Error, code string) {
	if e.Extensions == nil {
		e.Extensions = map[string]any{}
	}
	e.Extensions["code"] = code
}

// internalErrors is a field middleware: a resolver error that is not a *flashsale.Error is a
// fault of ours, so it is logged with its cause and the client sees only "internal error".
func internalErrors(log *slog.Logger) graphql.FieldMiddleware {
	return func(ctx context.Context, next graphql.Resolver) (any, error) {
		res, err := next(ctx)
		if err == nil || flashsale.ErrorCode(err) != flashsale.EINTERNAL {
			return res, err
		}
		var fe *flashsale.Error
		if !errors.As(err, &fe) {
			// A client that went away mid-request is not a fault of ours worth an ERROR.
			if !errors.Is(err, context.Canceled) {
				fc := graphql.GetFieldContext(ctx)
				log.ErrorContext(ctx, "resolver failed", "path", fc.Path().String(), "err", err)
			}
			err = flashsale.Errorf(flashsale.EINTERNAL, "internal error")
		}
		return res, err
	}
}

// recoverPanic turns a panic in a resolver into an INTERNAL error and logs its stack.
func recoverPanic(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "panic in resolver", "panic", p, "stack", string(debug.Stack()))
		return flashsale.Errorf(flashsale.EINTERNAL, "internal error")
	}
}
