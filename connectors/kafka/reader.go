package kafka

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kisflow/kisflow/connectors"
)

// Reader returns a reader of the topic named key: a member of the
// consumer group opts.Group, or, with an empty group, a private reader of
// every partition that commits nothing. It checks that the topic exists
// (or creates it, with the create param); joining the group happens in the
// background, and the first Read waits for it.
func (c *connector) Reader(ctx context.Context, key string, opts connectors.ReadOptions) (connectors.Reader, error) {
	if err := checkTopic(key); err != nil {
		return nil, c.errorf(key, "reader: %w", err)
	}
	if err := c.state.Check(key); err != nil {
		return nil, err
	}
	if _, err := c.topic(ctx, key); err != nil {
		return nil, err
	}
	r := &reader{
		c:       c,
		key:     key,
		group:   opts.Group,
		parts:   make(map[int32]*partition),
		changed: make(chan struct{}),
		stop:    make(chan struct{}),
	}
	reset := kgo.NewOffset().AtEnd()
	if opts.FromStart {
		reset = kgo.NewOffset().AtStart()
	}
	kopts := append(c.o.clientOpts(),
		kgo.ConsumeTopics(key),
		kgo.ConsumeResetOffset(reset),
		// Records of aborted transactions are never delivered.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if c.o.fetchMaxWait > 0 {
		kopts = append(kopts, kgo.FetchMaxWait(c.o.fetchMaxWait))
	}
	if c.o.exactlyOnce {
		return c.newTxnReader(key, opts, kopts)
	}
	if r.group != "" {
		kopts = append(kopts, c.o.groupOpts(r.group)...)
		kopts = append(kopts,
			kgo.DisableAutoCommit(),
			kgo.BlockRebalanceOnPoll(),
			kgo.OnPartitionsRevoked(r.revoked),
			kgo.OnPartitionsLost(r.lost),
		)
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, c.errorf(key, "reader: %w: %w", connectors.ErrConfig, err)
	}
	r.cl = cl
	if err := c.state.Open(key, r); err != nil {
		cl.Close()
		return nil, err
	}
	if r.group != "" {
		r.wg.Go(r.commitLoop)
	}
	return r, nil
}

// reader reads one topic. A group reader tracks, per partition, the
// records it handed out in offset order, and commits the offset after the
// last record of the acknowledged prefix.
type reader struct {
	c     *connector
	key   string
	group string // "" for a private reader
	cl    *kgo.Client

	mu        sync.Mutex
	parts     map[int32]*partition // partitions assigned, with their records in flight
	dirty     bool                 // some partition's acknowledged prefix moved since the last commit
	closing   bool
	changed   chan struct{} // closed and replaced when a revoking partition's prefix moves
	commitErr error         // the last commit's failure, nil after a success

	stop chan struct{} // closed by Close: ends the commit loop
	wg   sync.WaitGroup
	once sync.Once

	// Hooks for tests. revoking, if set, is called when a revoke starts
	// waiting for the rows of the partitions it takes away; handed, with
	// r.mu held, for every record Read hands out, in order.
	revoking func(partitions []int32)
	handed   func(*entry)
}

// partition is the acknowledgement state of one assigned partition.
type partition struct {
	id       int32
	live     bool            // false once revoked or lost: acknowledgements no longer commit
	revoking bool            // a revoke is waiting for its rows
	flight   []*entry        // records handed out and not yet in the acknowledged prefix, in offset order
	next     kgo.EpochOffset // the offset after the acknowledged prefix; -1 before the first acknowledgement
	sent     int64           // the offset last committed (or being committed), -1 if none
}

// entry is one record handed out by Read.
type entry struct {
	r      *reader
	part   *partition // nil for a private reader
	offset int64
	epoch  int32
	acked  bool
}

// ack is the Ack of a delivery: it marks the record handled and moves its
// partition's acknowledged prefix past every handled record at its head.
func (e *entry) ack() error {
	r := e.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.acked {
		return r.c.errorf(r.key, "ack offset %d: %w", e.offset, connectors.ErrAcked)
	}
	e.acked = true
	p := e.part
	if p == nil || !p.live {
		return nil // private, or the partition went to another reader: it reads the record again
	}
	n := 0
	for n < len(p.flight) && p.flight[n].acked {
		n++
	}
	if n == 0 {
		return nil
	}
	last := p.flight[n-1]
	p.next = kgo.EpochOffset{Epoch: last.epoch, Offset: last.offset + 1}
	clear(p.flight[:n])
	p.flight = p.flight[n:]
	r.dirty = true
	if p.revoking {
		close(r.changed)
		r.changed = make(chan struct{})
	}
	return nil
}

// Read returns between 1 and n records of the partitions this reader
// holds, waiting for them as long as ctx allows. A group reader's first
// Read waits for the group to assign it partitions.
func (r *reader) Read(ctx context.Context, n int) ([]connectors.Delivery, error) {
	n = max(n, 1)
	for {
		if r.isClosing() {
			return nil, r.c.errorf(r.key, "read: %w", connectors.ErrClosed)
		}
		fs := r.cl.PollRecords(ctx, n)
		if fs.IsClientClosed() {
			return nil, r.c.errorf(r.key, "read: %w", connectors.ErrClosed)
		}
		var ds []connectors.Delivery
		if recs := fs.Records(); len(recs) > 0 {
			ds = r.deliveries(recs)
		}
		if r.group != "" {
			// Every record polled is tracked: a revoke may run now and
			// wait for them.
			r.cl.AllowRebalance()
		}
		if len(ds) > 0 {
			return ds, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := r.fetchErr(fs); err != nil {
			return nil, err
		}
	}
}

// fetchErr returns the first error of fs that stops reading, or nil: the
// client retries on its own after the others.
func (r *reader) fetchErr(fs kgo.Fetches) error {
	var first error
	fs.EachError(func(topic string, p int32, err error) {
		var loss *kgo.ErrDataLoss
		var session *kgo.ErrGroupSession
		switch {
		case first != nil, errors.As(err, &loss), errors.As(err, &session),
			errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			return
		}
		first = r.c.errorf(r.key, "fetch partition %d: %w", p, err)
	})
	return first
}

// deliveries tracks recs and wraps them for the caller.
func (r *reader) deliveries(recs []*kgo.Record) []connectors.Delivery {
	ds := make([]connectors.Delivery, len(recs))
	es := make([]entry, len(recs))
	r.mu.Lock()
	for i, rec := range recs {
		e := &es[i]
		*e = entry{r: r, offset: rec.Offset, epoch: rec.LeaderEpoch}
		if r.group != "" {
			p := r.parts[rec.Partition]
			if p == nil {
				p = &partition{id: rec.Partition, live: true, next: kgo.EpochOffset{Epoch: -1, Offset: -1}, sent: -1}
				r.parts[rec.Partition] = p
			}
			e.part = p
			p.flight = append(p.flight, e)
		}
		if r.handed != nil {
			r.handed(e)
		}
		var key string
		if rec.Key != nil {
			key = string(rec.Key)
		}
		ds[i] = connectors.Delivery{
			Message: connectors.Message{Key: key, Data: rec.Value, Headers: headers(rec.Headers)},
			Ack:     e.ack,
		}
	}
	r.mu.Unlock()
	return ds
}

// headers returns the record headers as a map (the last value of a name
// that repeats), or nil when there are none.
func headers(hs []kgo.RecordHeader) map[string]string {
	if len(hs) == 0 {
		return nil
	}
	m := make(map[string]string, len(hs))
	for _, h := range hs {
		m[h.Key] = string(h.Value)
	}
	return m
}

// inFlight returns how many records of the given partitions are handed
// out and not in their acknowledged prefix. r.mu is held.
func (r *reader) inFlight(ids []int32) int {
	n := 0
	for _, id := range ids {
		if p := r.parts[id]; p != nil {
			n += len(p.flight)
		}
	}
	return n
}

// toCommit returns the offsets to commit for the given partitions (all
// live ones if ids is nil) and marks them sent. r.mu is held.
func (r *reader) toCommit(ids []int32) map[string]map[int32]kgo.EpochOffset {
	var offs map[int32]kgo.EpochOffset
	add := func(p *partition) {
		if p.next.Offset > p.sent {
			if offs == nil {
				offs = make(map[int32]kgo.EpochOffset)
			}
			offs[p.id] = p.next
			p.sent = p.next.Offset
		}
	}
	if ids == nil {
		for _, p := range r.parts {
			add(p)
		}
		r.dirty = false
	} else {
		for _, id := range ids {
			if p := r.parts[id]; p != nil {
				add(p)
			}
		}
	}
	if offs == nil {
		return nil
	}
	return map[string]map[int32]kgo.EpochOffset{r.key: offs}
}

// commit commits offs synchronously, bounded by the timeout param. A
// partition whose commit failed is committed again by the next commit.
func (r *reader) commit(ctx context.Context, offs map[string]map[int32]kgo.EpochOffset) error {
	if len(offs) == 0 {
		return nil
	}
	ctx, cancel := r.c.opContext(ctx)
	defer cancel()
	var failed []int32
	var cause error
	r.cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cause = err
			for id := range offs[r.key] {
				failed = append(failed, id)
			}
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if perr := kerrFor(p.ErrorCode); perr != nil {
					cause = perr
					failed = append(failed, p.Partition)
				}
			}
		}
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range failed {
		if p := r.parts[id]; p != nil && p.sent == offs[r.key][id].Offset {
			p.sent = -1 // commit it again
			r.dirty = true
		}
	}
	if cause != nil {
		r.commitErr = r.c.errorf(r.key, "group %q: commit offsets %v: %w", r.group, offs[r.key], cause)
		return r.commitErr
	}
	r.commitErr = nil
	return nil
}

// commitLoop commits the acknowledged prefixes every commit_interval until
// the reader closes.
func (r *reader) commitLoop() {
	t := time.NewTicker(r.c.o.commitInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		_ = r.flush(context.Background()) // kept in commitErr; retried next time
	}
}

// flush commits the acknowledged prefixes that moved since the last
// commit.
func (r *reader) flush(ctx context.Context) error {
	r.mu.Lock()
	var offs map[string]map[int32]kgo.EpochOffset
	if r.dirty {
		offs = r.toCommit(nil)
	}
	r.mu.Unlock()
	return r.commit(ctx, offs)
}

// revoked is the group's OnPartitionsRevoked: the client no longer fetches
// the partitions, and no Read runs. It waits up to revoke_wait for the
// records of those partitions this reader handed out to be acknowledged,
// commits the acknowledged prefixes, and forgets the partitions: later
// acknowledgements of their records commit nothing (the partitions' new
// owner reads those records again).
func (r *reader) revoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	ids := revoked[r.key]
	if len(ids) == 0 {
		return
	}
	r.mu.Lock()
	for _, id := range ids {
		if p := r.parts[id]; p != nil {
			p.revoking = true
		}
	}
	wait := !r.closing && r.c.o.revokeWait > 0 && r.inFlight(ids) > 0
	r.mu.Unlock()
	if wait {
		if r.revoking != nil {
			r.revoking(ids)
		}
		timer := time.NewTimer(r.c.o.revokeWait)
	waiting:
		for {
			r.mu.Lock()
			left, changed := r.inFlight(ids), r.changed
			r.mu.Unlock()
			if left == 0 {
				break
			}
			select {
			case <-changed:
			case <-timer.C:
				break waiting
			case <-r.stop:
				break waiting
			case <-ctx.Done():
				break waiting
			}
		}
		timer.Stop()
	}
	r.mu.Lock()
	offs := r.toCommit(ids)
	r.mu.Unlock()
	_ = r.commit(context.WithoutCancel(ctx), offs)
	r.drop(ids)
}

// lost is the group's OnPartitionsLost: the partitions are gone (session
// expired, fenced), so nothing of them is committed.
func (r *reader) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	r.drop(lost[r.key])
}

// drop forgets the given partitions.
func (r *reader) drop(ids []int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if p := r.parts[id]; p != nil {
			p.live, p.revoking = false, false
			p.flight = nil
			delete(r.parts, id)
		}
	}
}

func (r *reader) isClosing() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closing
}

// Close stops the reader: a Read in progress returns ErrClosed. A group
// reader commits the acknowledged prefixes of its partitions and leaves
// the group without waiting for the rows still in flight, which the
// group's other readers then read again. Close returns the error of that
// last commit.
func (r *reader) Close() error {
	err := r.end()
	r.c.state.Forget(r)
	return err
}

func (r *reader) end() error {
	var err error
	r.once.Do(func() {
		r.mu.Lock()
		r.closing = true
		r.mu.Unlock()
		close(r.stop)
		r.wg.Wait()
		if r.group != "" {
			r.mu.Lock()
			offs := r.toCommit(nil)
			r.mu.Unlock()
			err = r.commit(context.Background(), offs)
		}
		r.cl.CloseAllowingRebalance()
	})
	return err
}

// kerrFor is kerr.ErrorForCode.
func kerrFor(code int16) error { return kerr.ErrorForCode(code) }
