package eventlog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Log keys, defined once so that every message of the package uses the same
// names.
const (
	logKeyTopic       = "topic"
	logKeyGroup       = "group"
	logKeyErr         = "err"
	logKeyEvents      = "events"
	logKeyBytes       = "bytes"
	logKeyDir         = "dir"
	logKeyFile        = "file"
	logKeyAddr        = "addr"
	logKeyDetail      = "detail"
	logKeyDropped     = "dropped"
	logKeySpillEvents = "spill_events"
	logKeyOffset      = "offset"
	logKeyGeneration  = "generation"
	logKeyPartition   = "partition"
	logKeyPartitions  = "partitions"
)

// kafkaLogger adapts kafka-go's printf logger to slog at the given level. The
// client's messages are free text, so they go under one constant message
// with the text in the detail key.
func kafkaLogger(l *slog.Logger, level slog.Level, msg string) kafka.LoggerFunc {
	return func(format string, args ...any) {
		// context.TODO: slog only uses the context to look up handler
		// attributes; there is no request context inside kafka-go's callback.
		ctx := context.TODO()
		if !l.Enabled(ctx, level) {
			return
		}
		l.Log(ctx, level, msg, logKeyDetail, fmt.Sprintf(format, args...))
	}
}

// kfakeLogger adapts kfake's logger to slog. kfake logs every request at
// info, which is debug detail for us.
type kfakeLogger struct{ l *slog.Logger }

func (k kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	var sl slog.Level
	switch level {
	case kfake.LogLevelError:
		sl = slog.LevelError
	case kfake.LogLevelWarn:
		sl = slog.LevelWarn
	case kfake.LogLevelNone:
		return
	default:
		sl = slog.LevelDebug
	}
	ctx := context.TODO()
	if !k.l.Enabled(ctx, sl) {
		return
	}
	k.l.Log(ctx, sl, "embedded broker", logKeyDetail, fmt.Sprintf(format, args...))
}
