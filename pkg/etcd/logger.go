package etcd

import (
	"os"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// closeNoise are messages etcd logs, at error level, for every listener it
// shuts down on a clean close.
var closeNoise = map[string]bool{
	"setting up serving from embedded etcd failed.": true,
	"stopping insecure grpc server due to error":    true,
	"stopped insecure grpc server due to error":     true,
}

// newLogger logs etcd's warnings and errors as JSON lines on stderr, leaving
// out the listener noise of a clean close once closing is set.
func newLogger(closing *atomic.Bool) *zap.Logger {
	encoding := zap.NewProductionEncoderConfig()
	encoding.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(encoding), zapcore.Lock(os.Stderr), zap.WarnLevel)
	return zap.New(quietOnClose{Core: core, closing: closing}, zap.AddCaller())
}

type quietOnClose struct {
	zapcore.Core
	closing *atomic.Bool
}

func (c quietOnClose) With(fields []zapcore.Field) zapcore.Core {
	return quietOnClose{Core: c.Core.With(fields), closing: c.closing}
}

func (c quietOnClose) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.closing.Load() && closeNoise[e.Message] {
		return ce
	}
	return c.Core.Check(e, ce)
}
