package nats

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kisflow/kisflow/connectors"
)

// Reader returns a reader of key through a pull consumer of the stream
// that captures key: the durable named after opts.Group (created if
// missing), or a private consumer when opts.Group is empty.
func (c *connector) Reader(ctx context.Context, key string, opts connectors.ReadOptions) (connectors.Reader, error) {
	if err := checkKey(key); err != nil {
		return nil, c.errorf(key, "reader: %w", err)
	}
	if err := c.state.Check(key); err != nil {
		return nil, err
	}
	wanted := []string{key, key + ".*"}
	if rp := c.o.readPartitions; len(rp) > 0 {
		wanted = wanted[:0]
		for _, p := range rp {
			wanted = append(wanted, key+"."+strconv.Itoa(p))
		}
	}
	s, err := c.stream(ctx, key, key, key+".*")
	if err != nil {
		return nil, err
	}
	info := s.CachedInfo()
	var filters []string
	for _, f := range wanted {
		if captured(info, f) {
			filters = append(filters, f)
		}
	}
	if len(filters) == 0 {
		return nil, c.errorf(key, "stream %q (subjects %q) captures none of %q: %w",
			info.Config.Name, info.Config.Subjects, wanted, connectors.ErrConfig)
	}
	// A stream that holds nothing but the key needs no filter.
	exclusive := true
	for _, sub := range info.Config.Subjects {
		if !slices.ContainsFunc(filters, func(f string) bool { return covers(f, sub) }) {
			exclusive = false
			break
		}
	}
	cfg := jetstream.ConsumerConfig{
		Description:   "KisFlow connector key " + key,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.o.ackWait,
		MaxAckPending: c.o.maxAckPending,
		DeliverPolicy: jetstream.DeliverNewPolicy,
	}
	if opts.FromStart {
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	switch {
	case exclusive:
	case len(filters) == 1:
		cfg.FilterSubject = filters[0]
	default:
		cfg.FilterSubjects = filters
	}
	r := &reader{c: c, key: key, stream: info.Config.Name}
	if opts.Group != "" {
		cfg.Durable = safeName(opts.Group)
		if rp := c.o.readPartitions; len(rp) > 0 {
			parts := make([]string, len(rp))
			for i, p := range rp {
				parts[i] = strconv.Itoa(p)
			}
			cfg.Durable += "_p" + strings.Join(parts, "_")
		}
		r.cons, err = c.durable(ctx, key, r.stream, cfg)
	} else {
		cfg.InactiveThreshold = ephemeralInactive
		actx, cancel := c.opContext(ctx)
		r.cons, err = c.js.CreateConsumer(actx, r.stream, cfg)
		cancel()
		if err != nil {
			err = c.errorf(key, "create a private consumer on stream %q: %w", r.stream, err)
		}
	}
	if err != nil {
		return nil, err
	}
	r.name = r.cons.CachedInfo().Name
	r.private = opts.Group == ""
	r.life, r.stop = context.WithCancel(context.Background())
	if err := c.state.Open(key, r); err != nil {
		r.end(ctx)
		return nil, err
	}
	return r, nil
}

// durable returns the durable consumer cfg describes, creating it if it is
// missing and updating its ack_wait and max_ack_pending if they differ. A
// durable that exists keeps its deliver policy: FromStart matters only when
// the group is created.
func (c *connector) durable(ctx context.Context, key, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	for attempt := 0; ; attempt++ {
		cons, err := c.js.Consumer(ctx, stream, cfg.Durable)
		if err == nil {
			have := cons.CachedInfo().Config
			if !slices.Equal(filtersOf(have), filtersOf(cfg)) {
				return nil, c.errorf(key, "group %q: durable %q of stream %q reads subjects %q, not %q (two keys or partition sets in one group?): %w",
					cfg.Durable, cfg.Durable, stream, filtersOf(have), filtersOf(cfg), connectors.ErrConfig)
			}
			if have.AckPolicy != jetstream.AckExplicitPolicy {
				return nil, c.errorf(key, "durable %q of stream %q uses ack policy %v, not explicit: %w",
					cfg.Durable, stream, have.AckPolicy, connectors.ErrConfig)
			}
			if have.AckWait == cfg.AckWait && have.MaxAckPending == cfg.MaxAckPending {
				return cons, nil
			}
			have.AckWait, have.MaxAckPending = cfg.AckWait, cfg.MaxAckPending
			cons, err = c.js.UpdateConsumer(ctx, stream, have)
			if err != nil {
				return nil, c.errorf(key, "update durable %q of stream %q: %w", cfg.Durable, stream, err)
			}
			return cons, nil
		}
		if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, c.errorf(key, "durable %q of stream %q: %w", cfg.Durable, stream, err)
		}
		cons, err = c.js.CreateConsumer(ctx, stream, cfg)
		if err == nil {
			return cons, nil
		}
		if attempt > 0 || !errors.Is(err, jetstream.ErrConsumerExists) {
			return nil, c.errorf(key, "create durable %q on stream %q: %w", cfg.Durable, stream, err)
		}
		// Created meanwhile by another reader of the group: use that one.
	}
}

// filtersOf returns the filter subjects of a consumer, sorted.
func filtersOf(cfg jetstream.ConsumerConfig) []string {
	fs := slices.Clone(cfg.FilterSubjects)
	if cfg.FilterSubject != "" {
		fs = append(fs, cfg.FilterSubject)
	}
	slices.Sort(fs)
	return fs
}

// reader reads one key through a pull consumer.
type reader struct {
	c       *connector
	key     string
	stream  string
	name    string // consumer name
	private bool   // a consumer of this reader alone, deleted on Close
	cons    jetstream.Consumer

	life context.Context // cancelled by Close
	stop context.CancelFunc
	once sync.Once
}

// Read returns between 1 and n messages (at most fetch_max). It takes what
// the consumer has at once and, when it has nothing, waits for one message
// in pulls of up to fetch_wait each, until ctx is done. While the
// connection is being re-established it waits; once it is lost for good
// Read returns an error. Messages that arrive after ctx is done are handed
// back to the server (nak) for redelivery.
func (r *reader) Read(ctx context.Context, n int) ([]connectors.Delivery, error) {
	n = max(n, 1)
	if m := r.c.o.fetchMax; m > 0 {
		n = min(n, m)
	}
	if r.life.Err() != nil {
		return nil, r.c.errorf(r.key, "read: %w", connectors.ErrClosed)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(r.life, cancel)()
	for {
		if err := r.c.waitConnected(rctx, r.key); err != nil {
			if rctx.Err() != nil {
				return nil, r.ctxErr(ctx)
			}
			return nil, err
		}
		msgs, err := r.fetch(rctx, n, false)
		if err == nil && len(msgs) == 0 {
			msgs, err = r.fetch(rctx, 1, true)
			if err == nil && len(msgs) == 1 && n > 1 {
				var more []jetstream.Msg
				more, err = r.fetch(rctx, n-1, false)
				msgs = append(msgs, more...)
			}
		}
		if rctx.Err() != nil {
			for _, m := range msgs {
				_ = m.Nak()
			}
			return nil, r.ctxErr(ctx)
		}
		if len(msgs) > 0 {
			// An error after some messages shows again on the next Read.
			return r.deliveries(msgs), nil
		}
		if err != nil {
			if r.c.nc.Status() != natsio.CONNECTED {
				continue // wait for the connection to come back, or close
			}
			return nil, r.fetchErr(err)
		}
	}
}

// ctxErr is the error for a Read ended by ctx or by Close.
func (r *reader) ctxErr(ctx context.Context) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return r.c.errorf(r.key, "read: %w", connectors.ErrClosed)
}

// fetch pulls up to n messages: those available now, or, if wait is set,
// as many as arrive within fetch_wait (the caller asks for one).
func (r *reader) fetch(ctx context.Context, n int, wait bool) ([]jetstream.Msg, error) {
	var (
		b   jetstream.MessageBatch
		err error
	)
	if wait {
		wctx, cancel := context.WithTimeout(ctx, r.c.o.fetchWait)
		defer cancel()
		b, err = r.cons.Fetch(n, jetstream.FetchContext(wctx))
		if err != nil && wctx.Err() != nil {
			return nil, nil // the deadline passed while setting up: an empty pull
		}
	} else {
		b, err = r.cons.FetchNoWait(n)
	}
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for m := range b.Messages() {
		msgs = append(msgs, m)
	}
	err = b.Error()
	if wait && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		err = nil // our own bound on the wait
	}
	return msgs, err
}

// deliveries wraps messages for the caller.
func (r *reader) deliveries(msgs []jetstream.Msg) []connectors.Delivery {
	ds := make([]connectors.Delivery, len(msgs))
	for i, m := range msgs {
		h := m.Headers()
		ds[i] = connectors.Delivery{
			Message: connectors.Message{Key: h.Get(KeyHeader), Data: m.Data(), Headers: headers(h)},
			Ack:     r.acker(m),
		}
	}
	return ds
}

// headers returns the message headers of h: every header but KeyHeader,
// with its first value. It returns nil when there are none.
func headers(h natsio.Header) map[string]string {
	var out map[string]string
	for k, vs := range h {
		if k == KeyHeader || len(vs) == 0 {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(h))
		}
		out[k] = vs[0]
	}
	return out
}

// acker returns the Ack of one delivery.
func (r *reader) acker(m jetstream.Msg) func() error {
	return func() error {
		var err error
		if r.c.o.doubleAck {
			ctx, cancel := r.c.opContext(context.Background())
			err = m.DoubleAck(ctx)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("not confirmed within %v (param timeout): %w", r.c.o.timeout, err)
			}
		} else {
			err = m.Ack()
		}
		if err == nil {
			return nil
		}
		seq := "?"
		if md, merr := m.Metadata(); merr == nil {
			seq = strconv.FormatUint(md.Sequence.Stream, 10)
		}
		if r.c.nc.IsClosed() {
			err = fmt.Errorf("%w: %w", err, r.c.closedCause())
		}
		return r.c.errorf(r.key, "ack message %s of stream %q: %w", seq, r.stream, err)
	}
}

// fetchErr explains a failed pull.
func (r *reader) fetchErr(err error) error {
	switch {
	case errors.Is(err, natsio.ErrNoResponders), errors.Is(err, jetstream.ErrConsumerDeleted),
		errors.Is(err, jetstream.ErrConsumerNotFound):
		return r.c.errorf(r.key, "consumer %q of stream %q is gone (stream or consumer deleted?): %w", r.name, r.stream, err)
	case errors.Is(err, natsio.ErrConnectionClosed), errors.Is(err, jetstream.ErrConnectionClosed):
		return r.c.connClosed(r.key)
	}
	return r.c.errorf(r.key, "pull from consumer %q of stream %q: %w", r.name, r.stream, err)
}

// Close stops the reader: a Read in progress returns ErrClosed. A private
// consumer is deleted; a group's durable stays, and the messages this
// reader was given but did not acknowledge go to the group's other readers
// after ack_wait.
func (r *reader) Close() error {
	r.end(context.Background())
	r.c.state.Forget(r)
	return nil
}

func (r *reader) end(ctx context.Context) {
	r.once.Do(func() {
		r.stop()
		if r.private && r.c.nc.IsConnected() {
			dctx, cancel := r.c.opContext(context.WithoutCancel(ctx))
			_ = r.c.js.DeleteConsumer(dctx, r.stream, r.name)
			cancel()
		}
	})
}
