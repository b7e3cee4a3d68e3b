package app

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// NewLogger returns the JSON logger every binary uses.
func NewLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// SignalContext is cancelled by SIGINT or SIGTERM, which is how Ctrl-C and Kubernetes ask a
// process to stop.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// ShutdownTimeout is how long a stopping process waits for work in flight.
const ShutdownTimeout = 15 * time.Second
