package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kisflow/kisflow/connectors"
)

// errAcked is wrapped by the error of an Ack called on a delivery that was
// already acknowledged.
var errAcked = errors.New("delivery already acknowledged")

// closeTimeout bounds the Redis commands of a reader's Close when the
// caller gives no deadline, and of an unblocking CLIENT UNBLOCK.
const closeTimeout = 5 * time.Second

// delConsumer deletes a consumer from its group if it holds no pending
// message: XGROUP DELCONSUMER would drop the consumer's pending messages,
// which nobody could then reclaim.
var delConsumer = goredis.NewScript(`
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) == 0 then
	return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
return -1
`)

// reader reads one stream as one consumer of one group.
type reader struct {
	c         *Connector
	client    *goredis.Client
	key       string
	group     string
	consumer  string
	private   bool
	block     time.Duration
	claimIdle time.Duration

	closed atomic.Bool

	// readMu is held by Read for its whole call and by close, so the
	// fields below it are used by one goroutine at a time.
	readMu      sync.Mutex
	conn        *goredis.Conn // dedicated connection of the blocking reads
	connID      int64         // its CLIENT ID
	claimCursor string        // where the next XAUTOCLAIM starts
	nextClaim   time.Time     // when the next reclaim scan is due

	// mu guards blocked, blockSeq and the Add of unblocks.
	mu       sync.Mutex
	blocked  int64  // CLIENT ID of an XREADGROUP in flight, 0 if none
	blockSeq uint64 // counts XREADGROUPs, so interrupt ends only its own
	unblocks sync.WaitGroup

	// ackMu guards pending and every batch's acked flags.
	ackMu   sync.Mutex
	pending []string // acknowledged IDs not sent with XACK yet
}

// Read returns between 1 and n messages of the group: first messages
// that any consumer of the group, this one included, left unacknowledged
// for longer than claim_idle (XAUTOCLAIM, scanned at the first Read and
// then at most every claim_idle), otherwise new ones (XREADGROUP ... >, each call blocking at
// most the "block" param). It loops until it has a message, ctx is done
// (the blocked XREADGROUP is interrupted with CLIENT UNBLOCK) or the reader
// or the connector is closed. A stream never ends: Read never returns
// [connectors.ErrEnded].
//
// Read also sends the XACK of deliveries acknowledged since the previous
// Read whose read group is not fully acknowledged yet (see Delivery.Ack).
// Reads of one reader are serialised.
func (r *reader) Read(ctx context.Context, n int) ([]connectors.Delivery, error) {
	if n < 1 {
		return nil, r.errorf(fmt.Errorf("max %d, want at least 1", n), "read")
	}
	r.readMu.Lock()
	defer r.readMu.Unlock()
	for {
		if r.closed.Load() {
			return nil, r.errorf(connectors.ErrClosed, "read")
		}
		if err := ctx.Err(); err != nil {
			return nil, r.errorf(err, "read")
		}
		if err := r.flush(ctx); err != nil {
			return nil, err
		}
		if !time.Now().Before(r.nextClaim) {
			msgs, err := r.reclaim(ctx, n)
			if err != nil {
				return nil, err
			}
			if len(msgs) > 0 {
				return r.deliveries(msgs), nil
			}
			continue // the scan goes on, or is over and nextClaim moved
		}
		wait := max1ms(min(r.block, time.Until(r.nextClaim)))
		msgs, err := r.readNew(ctx, n, wait)
		if err != nil {
			return nil, err
		}
		if len(msgs) > 0 {
			return r.deliveries(msgs), nil
		}
	}
}

// max1ms returns d, or one millisecond if d is shorter: XREADGROUP counts
// whole milliseconds and BLOCK 0 would block for ever.
func max1ms(d time.Duration) time.Duration {
	return max(d, time.Millisecond)
}

// reclaim takes over up to n messages of the group idle for longer than
// claim_idle with one XAUTOCLAIM, continuing the current scan.
func (r *reader) reclaim(ctx context.Context, n int) ([]goredis.XMessage, error) {
	start := r.claimCursor
	if start == "" {
		start = "0-0"
	}
	msgs, next, err := r.client.XAutoClaim(ctx, &goredis.XAutoClaimArgs{
		Stream:   r.key,
		Group:    r.group,
		Consumer: r.consumer,
		MinIdle:  r.claimIdle,
		Start:    start,
		Count:    int64(n),
	}).Result()
	if err != nil {
		return nil, r.fail(ctx, err, "reclaim (XAUTOCLAIM)")
	}
	if next == "" || next == "0-0" {
		r.claimCursor = "0-0"
		r.nextClaim = time.Now().Add(r.claimIdle)
	} else {
		r.claimCursor = next
	}
	return msgs, nil
}

// readNew reads up to n new messages of the group with one XREADGROUP
// that blocks at most wait, on the reader's dedicated connection.
func (r *reader) readNew(ctx context.Context, n int, wait time.Duration) ([]goredis.XMessage, error) {
	if r.conn == nil {
		conn := r.client.Conn()
		id, err := conn.ClientID(ctx).Result()
		if err != nil {
			_ = conn.Close()
			return nil, r.fail(ctx, err, "read")
		}
		r.conn, r.connID = conn, id
	}

	r.mu.Lock()
	if r.closed.Load() {
		r.mu.Unlock()
		return nil, r.errorf(connectors.ErrClosed, "read")
	}
	r.blocked = r.connID
	r.blockSeq++
	r.mu.Unlock()
	stop := context.AfterFunc(ctx, r.interrupt)
	streams, err := r.conn.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group:    r.group,
		Consumer: r.consumer,
		Streams:  []string{r.key, ">"},
		Count:    int64(n),
		Block:    wait,
	}).Result()
	stop()
	r.mu.Lock()
	r.blocked = 0
	r.mu.Unlock()

	switch {
	case errors.Is(err, goredis.Nil):
		return nil, nil // timed out or interrupted
	case err != nil:
		_ = r.conn.Close() // a fresh connection for the next Read
		r.conn, r.connID = nil, 0
		return nil, r.fail(ctx, err, "read (XREADGROUP)")
	}
	var msgs []goredis.XMessage
	for _, s := range streams {
		msgs = append(msgs, s.Messages...)
	}
	return msgs, nil
}

// interrupt ends an XREADGROUP in flight with CLIENT UNBLOCK, which makes
// it return no message. It runs when a Read's ctx is done and on close.
//
// The command may not have reached the server yet when interrupt starts,
// and CLIENT UNBLOCK then finds nothing to unblock: interrupt tries again,
// with a short growing pause, for as long as that same XREADGROUP is in
// flight.
func (r *reader) interrupt() {
	r.mu.Lock()
	id, seq := r.blocked, r.blockSeq
	if id == 0 {
		r.mu.Unlock()
		return
	}
	r.unblocks.Add(1)
	r.mu.Unlock()
	defer r.unblocks.Done()

	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	pause := time.Millisecond
	for {
		n, err := r.client.ClientUnblock(ctx, id).Result()
		if err != nil || n == 1 {
			// On error the XREADGROUP ends by its BLOCK timeout.
			return
		}
		r.mu.Lock()
		inFlight := r.blocked == id && r.blockSeq == seq
		r.mu.Unlock()
		if !inFlight {
			return
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// ackBatch holds the deliveries of one Read.
type ackBatch struct {
	r     *reader
	ids   []string
	acked []bool // guarded by r.ackMu
	left  int    // deliveries not acknowledged yet, guarded by r.ackMu
}

// deliveries turns stream entries into deliveries sharing one ackBatch.
func (r *reader) deliveries(msgs []goredis.XMessage) []connectors.Delivery {
	b := &ackBatch{r: r, ids: make([]string, len(msgs)), acked: make([]bool, len(msgs)), left: len(msgs)}
	ds := make([]connectors.Delivery, len(msgs))
	for i, m := range msgs {
		b.ids[i] = m.ID
		if s, ok := m.Values[FieldData].(string); ok {
			ds[i].Data = []byte(s)
		}
		if s, ok := m.Values[FieldKey].(string); ok {
			ds[i].Key = s
		}
		ds[i].Headers = headers(m.Values)
		ds[i].Ack = func() error { return b.ack(i) }
	}
	return ds
}

// headers returns the message headers kept in the fields of an entry that
// start with FieldHeaderPrefix, or nil when there are none.
func headers(values map[string]any) map[string]string {
	var h map[string]string
	for f, v := range values {
		name, ok := strings.CutPrefix(f, FieldHeaderPrefix)
		if !ok {
			continue
		}
		s, ok := v.(string)
		if !ok {
			continue
		}
		if h == nil {
			h = make(map[string]string)
		}
		h[name] = s
	}
	return h
}

// ack acknowledges delivery i of the batch. The XACK is sent when the
// batch's last delivery is acknowledged, together with every other
// acknowledged delivery of the reader not sent yet; an earlier Ack only
// records the delivery as handled, and the next Read or Close sends it.
func (b *ackBatch) ack(i int) error {
	r := b.r
	r.ackMu.Lock()
	if b.acked[i] {
		r.ackMu.Unlock()
		return r.errorf(errAcked, "ack %s", b.ids[i])
	}
	b.acked[i] = true
	b.left--
	closed := r.closed.Load()
	if closed && r.private {
		r.ackMu.Unlock()
		return nil // the group went with the reader
	}
	r.pending = append(r.pending, b.ids[i])
	if b.left > 0 && !closed {
		r.ackMu.Unlock()
		return nil
	}
	ids := r.pending
	r.pending = nil
	r.ackMu.Unlock()
	return r.xack(context.Background(), ids)
}

// flush sends the XACK of the acknowledged deliveries not sent yet.
func (r *reader) flush(ctx context.Context) error {
	r.ackMu.Lock()
	ids := r.pending
	r.pending = nil
	r.ackMu.Unlock()
	return r.xack(ctx, ids)
}

// xack acknowledges ids in the group with one XACK.
func (r *reader) xack(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := r.client.XAck(ctx, r.key, r.group, ids...).Err(); err != nil {
		return r.fail(ctx, err, "acknowledge (XACK of %d)", len(ids))
	}
	return nil
}

// Close stops the reader. A Read blocked in another goroutine returns an
// error wrapping [connectors.ErrClosed]; so does every later Read. Close
// sends the XACK of deliveries acknowledged but not sent yet; deliveries
// acknowledged after Close are sent at once.
//
// Unacknowledged deliveries of a named group stay pending in Redis and go
// to another reader of the group once idle for claim_idle; Close deletes
// the reader's consumer from the group when it holds no pending message.
// A private group is destroyed with its pending messages, and acknowledging
// its deliveries afterwards does nothing.
func (r *reader) Close() error {
	return r.close(context.Background())
}

// close is Close with a context for its Redis commands, bounded by
// closeTimeout when ctx has no deadline.
func (r *reader) close(ctx context.Context) error {
	if r.closed.Swap(true) {
		return r.errorf(connectors.ErrClosed, "close reader")
	}
	defer r.c.forget(r)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, closeTimeout)
		defer cancel()
	}
	r.interrupt()
	r.readMu.Lock()
	defer r.readMu.Unlock()
	r.unblocks.Wait()
	if r.conn != nil {
		_ = r.conn.Close()
		r.conn, r.connID = nil, 0
	}

	var errs []error
	if r.private {
		r.ackMu.Lock()
		r.pending = nil
		r.ackMu.Unlock()
		if err := r.client.XGroupDestroy(ctx, r.key, r.group).Err(); err != nil {
			errs = append(errs, r.fail(ctx, err, "close reader: destroy private group"))
		}
		return errors.Join(errs...)
	}
	if err := r.flush(ctx); err != nil {
		errs = append(errs, err)
	}
	err := delConsumer.Run(ctx, r.client, []string{r.key}, r.group, r.consumer).Err()
	if err != nil && !isNoGroup(err) {
		errs = append(errs, r.fail(ctx, err, "close reader: delete consumer %q", r.consumer))
	}
	return errors.Join(errs...)
}

// fail wraps the error of a Redis command: with ErrClosed when the
// connector's client was closed, with ctx's error when ctx ended, with an
// explanation for NOGROUP.
func (r *reader) fail(ctx context.Context, err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	switch {
	case errors.Is(err, goredis.ErrClosed):
		return r.errorf(fmt.Errorf("%w (%v)", connectors.ErrClosed, err), "%s", what)
	case ctx.Err() != nil && !errors.Is(err, ctx.Err()):
		return r.errorf(fmt.Errorf("%w (%v)", ctx.Err(), err), "%s", what)
	case isNoGroup(err):
		return r.errorf(err, "%s: the group or the stream no longer exists (destroyed or deleted since the reader opened)", what)
	}
	return r.errorf(err, "%s", what)
}

// errorf wraps err with the connector, the key, the group and what was
// being done.
func (r *reader) errorf(err error, format string, args ...any) error {
	return fmt.Errorf("redis connector %q, key %q, group %q: %s: %w", r.c.name, r.key, r.group, fmt.Sprintf(format, args...), err)
}
