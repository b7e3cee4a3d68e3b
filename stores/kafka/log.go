package kafka

import (
	"context"
	"fmt"
	"log/slog"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaLogger routes kafka-go's printf-style logs into slog at one level. Only its error
// logger is wired: its info logger reports every fetch and commit.
func kafkaLogger(log *slog.Logger, level slog.Level) kafkago.Logger {
	return kafkago.LoggerFunc(func(format string, args ...any) {
		log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	})
}

// kgoLogger routes the consumer's logs into slog. It passes on warnings and errors only:
// franz-go's info level reports every join and commit.
type kgoLogger struct{ log *slog.Logger }

func (l kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	sl := slog.LevelWarn
	if level == kgo.LogLevelError {
		sl = slog.LevelError
	} else if level != kgo.LogLevelWarn {
		return
	}
	l.log.Log(context.Background(), sl, msg, keyvals...)
}

// kfakeLogger routes the embedded broker's logs into slog. It drops kfake's info and debug
// levels, which log every request.
type kfakeLogger struct{ log *slog.Logger }

func (l kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	var sl slog.Level
	switch level {
	case kfake.LogLevelError:
		sl = slog.LevelError
	case kfake.LogLevelWarn:
		sl = slog.LevelWarn
	default:
		return
	}
	l.log.Log(context.Background(), sl, fmt.Sprintf(format, args...))
}
