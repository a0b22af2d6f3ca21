package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	gojson "github.com/goccy/go-json"

	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// Codec turns rows of T into message bytes and back.
type Codec[T any] struct {
	Encode func(T) ([]byte, error)
	Decode func([]byte) (T, error)
}

// JSON returns the codec that encodes rows as JSON with encoding/json and
// decodes them with github.com/goccy/go-json, which accepts and decodes
// what encoding/json does (FuzzJSON checks it), several times faster.
func JSON[T any]() Codec[T] {
	return Codec[T]{
		Encode: func(v T) ([]byte, error) { return json.Marshal(v) },
		Decode: func(b []byte) (T, error) {
			var v T
			err := gojson.Unmarshal(b, &v)
			return v, err
		},
	}
}

// readSize is how many messages Load asks a reader for at a time.
const readSize = 256

// Load adds a source named name to p that reads messages from r and decodes
// them with codec. Each group of messages read together is acknowledged
// once every row derived from it has been handled (see
// pipeline.Input.SubmitAck), so a broker-backed reader gives at-least-once
// delivery. A message that does not decode is counted as a failed row of
// the source and acknowledged, so it is not redelivered for ever. The source
// ends when r returns [connectors.ErrEnded], on Stop, or when the run ends;
// it does not close r. In a traced pipeline (pipeline.Trace), the rows of
// messages with the same headers are one input, whose span continues the
// trace those headers carry (see pipeline.Emitter.EmitHeaders).
func Load[T any](p *pipeline.Pipeline, name string, r connectors.Reader, codec Codec[T]) pipeline.Stream[T] {
	if r == nil || codec.Decode == nil {
		panic("stream: Load " + name + ": nil reader or decoder")
	}
	return pipeline.FromFunc(p, name, func(ctx context.Context, emit *pipeline.Emitter[T]) error {
		rows := make([]T, 0, readSize)
		var headers []map[string]string
		for {
			ds, err := r.Read(ctx, readSize)
			switch {
			case errors.Is(err, connectors.ErrEnded):
				return nil
			case err != nil:
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("read: %w", err)
			}
			rows, headers = rows[:0], headers[:0]
			for _, d := range ds {
				v, err := codec.Decode(d.Data)
				if err != nil {
					emit.Fail(fmt.Errorf("decode message: %w", err))
					continue
				}
				rows = append(rows, v)
				headers = append(headers, d.Headers)
			}
			ack := func() {
				for _, d := range ds {
					if err := d.Ack(); err != nil {
						emit.Warn(fmt.Errorf("ack: %w", err))
					}
				}
			}
			if len(rows) == 0 {
				ack()
				continue
			}
			_, err = emit.EmitHeaders(ctx, rows, headers, ack)
			clear(headers)
			if err != nil {
				return err
			}
		}
	})
}

// Save returns a sink stage named name that encodes each chunk of rows
// with codec and writes it to w. key, if not nil, sets each message's
// partition key. An encoding or write error fails (or, with stage.Retry,
// retries) the whole chunk. Save does not close w. In a traced pipeline
// (pipeline.Trace), every message carries in its headers the trace
// context of the batch that wrote it (pipeline.InjectTrace), so a
// pipeline that loads it continues the trace.
func Save[T any](name string, w connectors.Writer, codec Codec[T], key func(T) string, opts ...stage.Option) *stage.Stage[T, struct{}] {
	if w == nil || codec.Encode == nil {
		panic("stream: Save " + name + ": nil writer or encoder")
	}
	return stage.SinkBatch(name, func(ctx context.Context, rows []T) error {
		msgs := make([]connectors.Message, len(rows))
		// One map for every message: connectors keep no reference to it.
		headers := pipeline.InjectTrace(ctx, nil)
		for i, v := range rows {
			data, err := codec.Encode(v)
			if err != nil {
				return fmt.Errorf("encode row: %w", err)
			}
			msgs[i].Data = data
			msgs[i].Headers = headers
			if key != nil {
				msgs[i].Key = key(v)
			}
		}
		return w.Write(ctx, msgs)
	}, opts...)
}
