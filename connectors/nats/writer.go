package nats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kisflow/kisflow/connectors"
)

// Writer returns a writer that publishes to key's subject (or, with the
// partitions param, to its partition subjects), finding or creating the
// stream that captures it first.
func (c *connector) Writer(ctx context.Context, key string) (connectors.Writer, error) {
	if err := checkKey(key); err != nil {
		return nil, c.errorf(key, "writer: %w", err)
	}
	if err := c.state.Check(key); err != nil {
		return nil, err
	}
	w := &writer{c: c, key: key, done: make(chan struct{})}
	sample := key
	if n := c.o.partitions; n > 0 {
		sample = key + ".*"
		w.subjects = make([]string, n)
		for p := range w.subjects {
			w.subjects[p] = key + "." + strconv.Itoa(p)
		}
	}
	s, err := c.stream(ctx, key, sample)
	if err != nil {
		return nil, err
	}
	if info := s.CachedInfo(); !captured(info, sample) {
		return nil, c.errorf(key, "stream %q (subjects %q) does not capture subject %q: %w",
			info.Config.Name, info.Config.Subjects, sample, connectors.ErrConfig)
	}
	w.stream = s.CachedInfo().Config.Name
	if err := c.state.Open(key, w); err != nil {
		return nil, err
	}
	return w, nil
}

// writer publishes messages to one key with asynchronous publishes, at most
// publish_window of them awaiting their acknowledgement at a time.
type writer struct {
	c        *connector
	key      string
	stream   string
	subjects []string      // partition subjects; nil without partitions
	next     atomic.Uint32 // round robin over partitions for messages without a key

	once sync.Once
	done chan struct{} // closed by Close
}

// subject returns the subject a message with partition key k goes to.
func (w *writer) subject(k string) string {
	n := uint32(len(w.subjects))
	if n == 0 {
		return w.key
	}
	if k == "" {
		return w.subjects[w.next.Add(1)%n]
	}
	return w.subjects[fnv32a(k)%n]
}

// fnv32a is the 32-bit FNV-1a hash of s. It is part of the wire format:
// every writer of a key must send a given partition key to one partition.
func fnv32a(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// maxWriteRetries bounds how often one Write publishes again the messages
// whose acknowledgement a lost connection swallowed.
const maxWriteRetries = 3

// Write publishes msgs in order and returns once the stream has stored
// every one of them. When the connection is lost meanwhile, Write waits
// for it to come back and publishes again the messages not acknowledged
// yet, some of which the stream may already hold. On an error some of
// msgs may have been stored: Save fails or retries the whole chunk, so
// delivery is at least once.
func (w *writer) Write(ctx context.Context, msgs []connectors.Message) error {
	select {
	case <-w.done:
		return w.c.errorf(w.key, "write: %w", connectors.ErrClosed)
	default:
	}
	for i := range msgs {
		if err := checkHeaders(msgs[i].Headers); err != nil {
			return w.c.errorf(w.key, "write: message %d of %d: %w", i+1, len(msgs), err)
		}
	}
	for attempt := 0; ; attempt++ {
		acked, subject, err := w.publish(ctx, msgs)
		if err == nil {
			return nil
		}
		if subject == "" { // ctx or Close
			return err
		}
		lost := errors.Is(err, natsio.ErrDisconnected) ||
			errors.Is(err, jetstream.ErrAsyncPublishTimeout) && !w.c.nc.IsConnected()
		if attempt == maxWriteRetries || !lost {
			return w.publishErr(subject, err)
		}
		msgs = msgs[acked:]
		if err := w.c.waitConnected(ctx, w.key); err != nil {
			return err
		}
	}
}

// publish publishes msgs with at most publish_window of them awaiting
// acknowledgement, and waits for the rest. It returns how many messages
// were acknowledged in order and, on an error of a publish, its subject
// (empty when ctx or Close ended the wait).
func (w *writer) publish(ctx context.Context, msgs []connectors.Message) (int, string, error) {
	if len(msgs) == 0 {
		return 0, "", nil
	}
	ring := make([]pending, min(w.c.o.publishWindow, len(msgs)))
	in, out := 0, 0 // published, and acknowledged, so far
	for i := range msgs {
		if in-out == len(ring) {
			p := &ring[out%len(ring)]
			if err := w.await(ctx, p); err != nil {
				return out, p.subject, err
			}
			out++
		}
		m := &natsio.Msg{Subject: w.subject(msgs[i].Key), Data: msgs[i].Data, Header: header(msgs[i])}
		f, err := w.c.js.PublishMsgAsync(m)
		if err != nil {
			return out, m.Subject, err
		}
		ring[in%len(ring)] = pending{f, m.Subject}
		in++
	}
	for ; out < in; out++ {
		p := &ring[out%len(ring)]
		if err := w.await(ctx, p); err != nil {
			return out, p.subject, err
		}
	}
	return out, "", nil
}

// header returns the NATS headers of m: its Headers, and its Key in
// KeyHeader. It returns nil when there are none.
func header(m connectors.Message) natsio.Header {
	if len(m.Headers) == 0 && m.Key == "" {
		return nil
	}
	h := make(natsio.Header, len(m.Headers)+1)
	for k, v := range m.Headers {
		h[k] = []string{v}
	}
	if m.Key != "" {
		h[KeyHeader] = []string{m.Key}
	}
	return h
}

// checkHeaders reports a header NATS cannot carry unchanged: an empty name,
// a name with a space, a control character or a colon, a name that is
// KeyHeader, or a value with a line break or surrounding white space
// (which NATS would trim).
func checkHeaders(h map[string]string) error {
	for k, v := range h {
		switch {
		case k == KeyHeader:
			return fmt.Errorf("header %q is reserved for the message key", k)
		case k == "" || strings.IndexFunc(k, func(r rune) bool { return r <= ' ' || r == ':' || r == 0x7f }) >= 0:
			return fmt.Errorf("header name %q: want no spaces, colons or control characters", k)
		case strings.ContainsAny(v, "\r\n"):
			return fmt.Errorf("header %q: the value has a line break", k)
		case strings.TrimSpace(v) != v:
			return fmt.Errorf("header %q: NATS would trim the white space around the value %q", k, v)
		}
	}
	return nil
}

// pending is a publish awaiting its acknowledgement.
type pending struct {
	f       jetstream.PubAckFuture
	subject string
}

// await waits for the acknowledgement of one publish. It returns the
// publish's error, or, with the subject cleared, the error of ctx or of
// Close ending the wait.
func (w *writer) await(ctx context.Context, p *pending) error {
	select {
	case <-p.f.Ok():
		return nil
	case err := <-p.f.Err():
		return err
	case <-ctx.Done():
		p.subject = ""
		return ctx.Err()
	case <-w.done:
		p.subject = ""
		return w.c.errorf(w.key, "write: %w", connectors.ErrClosed)
	}
}

// publishErr explains a failed publish.
func (w *writer) publishErr(subject string, err error) error {
	switch {
	case w.c.nc.IsClosed():
		return w.c.errorf(w.key, "publish to %q: %w", subject, w.c.closedCause())
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, natsio.ErrNoResponders):
		return w.c.errorf(w.key, "publish to %q: no stream answered (stream %q deleted?): %w", subject, w.stream, err)
	case errors.Is(err, jetstream.ErrAsyncPublishTimeout):
		return w.c.errorf(w.key, "publish to %q: stream %q did not acknowledge within %v (param timeout): %w", subject, w.stream, w.c.o.timeout, err)
	}
	return w.c.errorf(w.key, "publish to %q: %w", subject, err)
}

// Close ends the writer; a Write in progress returns ErrClosed. The
// messages stay in the stream.
func (w *writer) Close() error {
	w.end(context.Background())
	w.c.state.Forget(w)
	return nil
}

func (w *writer) end(context.Context) {
	w.once.Do(func() { close(w.done) })
}
