package logging

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
)

// New returns a logger at level ("debug", "info", "warn", "error"; default
// info) writing to w: human-friendly console lines when w is a terminal,
// JSON otherwise.
func New(level string, w io.Writer) (zerolog.Logger, error) {
	lvl := zerolog.InfoLevel
	if level != "" {
		l, err := zerolog.ParseLevel(strings.ToLower(level))
		if err != nil {
			return zerolog.Nop(), fmt.Errorf("log level %q: want debug, info, warn or error", level)
		}
		lvl = l
	}
	if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// Kgo adapts l to the franz-go client's logger. Kafka client chatter is
// shifted one level down (client info becomes debug) because the client is
// verbose about routine events such as rebalances. Its lines keep l's
// "part" and add "subsystem":"kafka" (a JSON line never repeats a key).
func Kgo(l zerolog.Logger) kgo.Logger {
	return kgoLogger{l: l.With().Str(SubsystemKey, "kafka").Logger()}
}

// Keys every part's log lines share: "part" names the pullsched part
// (scheduler, invoker, controller, workersim, broker, openwhisk),
// "subsystem" a library inside it (kafka, kfake). Each is set once, where
// the part or library builds its logger.
const (
	PartKey      = "part"
	SubsystemKey = "subsystem"
)

type kgoLogger struct{ l zerolog.Logger }

func (k kgoLogger) Level() kgo.LogLevel {
	switch k.l.GetLevel() {
	case zerolog.TraceLevel:
		return kgo.LogLevelDebug
	case zerolog.DebugLevel:
		return kgo.LogLevelInfo
	case zerolog.InfoLevel, zerolog.WarnLevel:
		return kgo.LogLevelWarn
	case zerolog.Disabled:
		return kgo.LogLevelNone
	}
	return kgo.LogLevelError
}

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var ev *zerolog.Event
	switch level {
	case kgo.LogLevelError:
		ev = k.l.Error()
	case kgo.LogLevelWarn:
		ev = k.l.Warn()
	case kgo.LogLevelInfo:
		ev = k.l.Debug()
	default:
		ev = k.l.Trace()
	}
	for i := 0; i+1 < len(keyvals); i += 2 {
		key, _ := keyvals[i].(string)
		switch v := keyvals[i+1].(type) {
		case error:
			ev = ev.AnErr(key, v)
		case time.Duration:
			ev = ev.Dur(key, v)
		default:
			ev = ev.Interface(key, v)
		}
	}
	ev.Msg(msg)
}
