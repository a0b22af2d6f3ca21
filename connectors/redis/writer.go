package redis

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kisflow/kisflow/connectors"
)

// writer appends messages to one stream.
type writer struct {
	c      *Connector
	client *goredis.Client
	key    string
	closed atomic.Bool
}

// Write appends msgs to the stream in order, one XADD per message, all
// sent in one pipeline (one round trip). Each entry has the field "d" (the
// data), when the message has a key "k", and "h:<name>" for each header.
// With the "maxlen" param each
// XADD also trims the stream to about that many entries.
//
// The pipeline is not a transaction: when Write fails, a prefix of msgs may
// have been saved, and writing them again duplicates that prefix (delivery
// is at least once).
func (w *writer) Write(ctx context.Context, msgs []connectors.Message) error {
	if w.closed.Load() {
		return w.errorf(connectors.ErrClosed, "write")
	}
	if err := ctx.Err(); err != nil {
		return w.errorf(err, "write")
	}
	switch len(msgs) {
	case 0:
		return nil
	case 1:
		if err := w.client.XAdd(ctx, w.args(msgs[0])).Err(); err != nil {
			return w.errorf(w.cause(err), "write")
		}
		return nil
	}
	pipe := w.client.Pipeline()
	for _, m := range msgs {
		pipe.XAdd(ctx, w.args(m))
	}
	cmds, err := pipe.Exec(ctx)
	if err == nil {
		return nil
	}
	for i, cmd := range cmds {
		if cmd.Err() != nil {
			return w.errorf(w.cause(cmd.Err()), "write message %d of %d", i+1, len(msgs))
		}
	}
	return w.errorf(w.cause(err), "write %d messages", len(msgs))
}

// args returns the XADD arguments of m.
func (w *writer) args(m connectors.Message) *goredis.XAddArgs {
	values := make([]any, 0, 4+2*len(m.Headers))
	values = append(values, FieldData, m.Data)
	if m.Key != "" {
		values = append(values, FieldKey, m.Key)
	}
	for k, v := range m.Headers {
		values = append(values, FieldHeaderPrefix+k, v)
	}
	a := &goredis.XAddArgs{Stream: w.key, Values: values}
	if w.c.maxLen > 0 {
		a.MaxLen = w.c.maxLen
		a.Approx = true
	}
	return a
}

// Close marks the writer closed: later Writes fail. A stream never ends,
// so readers are not told.
func (w *writer) Close() error {
	if w.closed.Swap(true) {
		return w.errorf(connectors.ErrClosed, "close writer")
	}
	w.c.forgetWriter(w)
	return nil
}

// cause replaces go-redis's "client is closed" by connectors.ErrClosed.
func (w *writer) cause(err error) error {
	if errors.Is(err, goredis.ErrClosed) {
		return fmt.Errorf("%w (%v)", connectors.ErrClosed, err)
	}
	return err
}

// errorf wraps err with the connector, the key and what was being done.
func (w *writer) errorf(err error, format string, args ...any) error {
	return fmt.Errorf("redis connector %q, key %q: %s: %w", w.c.name, w.key, fmt.Sprintf(format, args...), err)
}
