package apitest

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// recorder is a slog.Handler that keeps the API's log lines, so that a test can look for
// panics and internal errors, and passes warnings and errors on to the test's log.
type recorder struct {
	shared *recorderState
	// wrap rebuilds, on a fresh text handler, the WithAttrs and WithGroup calls made so far.
	wrap []func(slog.Handler) slog.Handler
}

type recorderState struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
	lines   []logLine
}

type logLine struct {
	level slog.Level
	text  string
}

func newRecorder(t testing.TB) *recorder { return &recorder{shared: &recorderState{t: t}} }

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	var buf bytes.Buffer
	h := slog.Handler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, w := range r.wrap {
		h = w(h)
	}
	if err := h.Handle(context.Background(), rec); err != nil {
		return err
	}
	line := strings.TrimSpace(buf.String())
	s := r.shared
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, logLine{level: rec.Level, text: line})
	if !s.stopped && rec.Level >= slog.LevelWarn {
		s.t.Logf("api: %s", shorten(line))
	}
	return nil
}

func (r *recorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	return r.with(func(h slog.Handler) slog.Handler { return h.WithAttrs(attrs) })
}

func (r *recorder) WithGroup(name string) slog.Handler {
	return r.with(func(h slog.Handler) slog.Handler { return h.WithGroup(name) })
}

func (r *recorder) with(w func(slog.Handler) slog.Handler) *recorder {
	return &recorder{shared: r.shared, wrap: append(append([]func(slog.Handler) slog.Handler(nil), r.wrap...), w)}
}

// stop ends forwarding to the test's log: the test may be over.
func (r *recorder) stop() {
	r.shared.mu.Lock()
	r.shared.stopped = true
	r.shared.mu.Unlock()
}

func (r *recorder) atLeast(level slog.Level) []string {
	r.shared.mu.Lock()
	defer r.shared.mu.Unlock()
	var out []string
	for _, l := range r.shared.lines {
		if l.level >= level {
			out = append(out, l.text)
		}
	}
	return out
}

func (r *recorder) matching(substr string) []string {
	var out []string
	for _, l := range r.atLeast(slog.LevelDebug) {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

// shorten keeps a log line readable in a test's output; panics carry whole stacks.
func shorten(line string) string {
	if len(line) > 1500 {
		return line[:1500] + "…"
	}
	return line
}
