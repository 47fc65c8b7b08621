package turnrelay

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogs bridges pion's leveled logger to slog. Every pion message is logged at debug
// level whatever pion's own level: pion puts client and peer addresses into nearly all of
// its messages (even errors), and addresses must not appear at info level. What operators
// need at info level comes from our own logs and metrics instead.
type pionLogs struct{ log *slog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) emit(level, msg string) {
	l.log.Debug(msg, "pion_level", level)
}

// emitf formats only when debug is on: pion calls these on the packet path.
func (l pionLogger) emitf(level, format string, args []any) {
	if !l.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	l.log.Debug(fmt.Sprintf(format, args...), "pion_level", level)
}

func (l pionLogger) Trace(msg string)                  { l.emit("trace", msg) }
func (l pionLogger) Tracef(format string, args ...any) { l.emitf("trace", format, args) }
func (l pionLogger) Debug(msg string)                  { l.emit("debug", msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.emitf("debug", format, args) }
func (l pionLogger) Info(msg string)                   { l.emit("info", msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.emitf("info", format, args) }
func (l pionLogger) Warn(msg string)                   { l.emit("warn", msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.emitf("warn", format, args) }
func (l pionLogger) Error(msg string)                  { l.emit("error", msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.emitf("error", format, args) }
