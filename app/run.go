package app

import (
	"cmp"
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// NewLogger returns the JSON logger every binary uses.
//
// LOG_LEVEL (debug, info, warn or error; default info) sets the least level written; a value
// it cannot read is warned about and info is used.
//
// A line logged with a request's context (the ...Context methods) carries the request's id
// (request_id, also its X-Request-Id) and, when it is traced, its trace_id and span_id.
func NewLogger() *slog.Logger {
	var level slog.Level
	bad := level.UnmarshalText([]byte(cmp.Or(os.Getenv("LOG_LEVEL"), "info")))
	log := slog.New(ContextHandler{slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})})
	if bad != nil {
		log.Warn("LOG_LEVEL is not one of debug, info, warn, error; using info", "LOG_LEVEL", os.Getenv("LOG_LEVEL"))
	}
	return log
}

// SignalContext is cancelled by SIGINT or SIGTERM, which is how Ctrl-C and Kubernetes ask a
// process to stop.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// ShutdownTimeout is how long a stopping process waits for work in flight.
const ShutdownTimeout = 15 * time.Second
