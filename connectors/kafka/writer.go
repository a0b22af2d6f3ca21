package kafka

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kisflow/kisflow/connectors"
)

// Writer returns a writer that produces to the topic named key, checking
// first that the topic exists (or creating it, with the create param).
func (c *connector) Writer(ctx context.Context, key string) (connectors.Writer, error) {
	if err := checkTopic(key); err != nil {
		return nil, c.errorf(key, "writer: %w", err)
	}
	if err := c.state.Check(key); err != nil {
		return nil, err
	}
	if _, err := c.topic(ctx, key); err != nil {
		return nil, err
	}
	w := &writer{c: c, key: key, done: make(chan struct{})}
	if err := c.state.Open(key, w); err != nil {
		return nil, err
	}
	return w, nil
}

// writer produces messages to one topic through the connector's producer.
type writer struct {
	c   *connector
	key string

	once sync.Once
	done chan struct{} // closed by Close
}

// batch is one Write awaiting the acknowledgements of its records.
type batch struct {
	left atomic.Int64
	err  atomic.Pointer[error] // the first failure
	done chan struct{}         // closed when every record is acknowledged or failed
}

func (b *batch) promise(_ *kgo.Record, err error) {
	if err != nil {
		b.err.CompareAndSwap(nil, &err)
	}
	if b.left.Add(-1) == 0 {
		close(b.done)
	}
}

// Write produces msgs in order, Key as the record key (the partition is
// the murmur2 hash of the key, as Kafka's own clients choose it; messages
// without a key are spread over the partitions) and Headers as record
// headers, and returns once every in-sync replica stored each of them. On
// an error some of msgs may be stored, or stored later by the client:
// Save fails or retries the whole chunk, so delivery is at least once.
func (w *writer) Write(ctx context.Context, msgs []connectors.Message) error {
	select {
	case <-w.done:
		return w.c.errorf(w.key, "write: %w", connectors.ErrClosed)
	default:
	}
	if len(msgs) == 0 {
		return nil
	}
	produce := w.c.prod.Produce
	if w.c.o.exactlyOnce {
		w.c.mu.Lock()
		txn := w.c.txn
		w.c.mu.Unlock()
		if txn == nil {
			return w.c.errorf(w.key, "write: param exactly_once: no reader of this connector is open, so there is no transaction to write in: %w", connectors.ErrConfig)
		}
		produce = txn.produce
	}
	b := &batch{done: make(chan struct{})}
	b.left.Store(int64(len(msgs)))
	recs := make([]kgo.Record, len(msgs))
	for i := range msgs {
		r := &recs[i]
		r.Topic = w.key
		if msgs[i].Key != "" {
			r.Key = []byte(msgs[i].Key)
		}
		r.Value = msgs[i].Data
		if len(msgs[i].Headers) > 0 {
			r.Headers = make([]kgo.RecordHeader, 0, len(msgs[i].Headers))
			for k, v := range msgs[i].Headers {
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
			}
		}
		produce(ctx, r, b.promise)
	}
	// The client enforces delivery_timeout only where it is safe for the
	// idempotent sequence numbers; while no broker can be reached it may
	// hold records longer. Write waits no longer than the setting (plus
	// the request timeout) all the same.
	limit := time.NewTimer(w.c.o.deliveryTimeout + w.c.o.timeout)
	defer limit.Stop()
	select {
	case <-b.done:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.done:
		return w.c.errorf(w.key, "write: %w", connectors.ErrClosed)
	case <-limit.C:
		return w.c.errorf(w.key, "produce: %d of %d messages not stored by the in-sync replicas within %v (param delivery_timeout; brokers unreachable?): %w",
			b.left.Load(), len(msgs), w.c.o.deliveryTimeout, kgo.ErrRecordTimeout)
	}
	if p := b.err.Load(); p != nil {
		err := *p
		switch {
		case errors.Is(err, kgo.ErrClientClosed):
			return w.c.errorf(w.key, "write: %w: %w", connectors.ErrClosed, err)
		case errors.Is(err, kgo.ErrRecordTimeout):
			return w.c.errorf(w.key, "produce: not stored by the in-sync replicas within %v (param delivery_timeout; brokers unreachable?): %w",
				w.c.o.deliveryTimeout, err)
		}
		return w.c.errorf(w.key, "produce: %w", err)
	}
	return nil
}

// Close ends the writer; a Write in progress returns ErrClosed. The
// messages it produced stay in the topic.
func (w *writer) Close() error {
	err := w.end()
	w.c.state.Forget(w)
	return err
}

func (w *writer) end() error {
	w.once.Do(func() { close(w.done) })
	return nil
}
