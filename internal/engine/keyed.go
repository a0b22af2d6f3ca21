package engine

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// A keyed node routes every row by the hash of its key to one of n
// workers, so that all rows of one key go to one worker, in order. Each
// worker owns an Operator (its keys' state and timers) and wakes on input
// and on the operator's next processing-time deadline, so timers fire
// without input arriving.
//
// Rows the operator holds in state (a window's rows) are counted
// Delivered only when they leave it (Emitter.Release); rows still held
// when the run ends without draining are then counted Abandoned by
// Counters.Settle, and their trackers are never released.

// NoWatermark is the watermark before any row: nothing is due.
const NoWatermark = math.MinInt64

// EndOfInput is the watermark and the time an operator is advanced to
// when its input ends: everything is due.
const EndOfInput = math.MaxInt64

// Operator is the state and logic of one worker of a keyed node. Its
// methods are called on the worker's goroutine only, except Stats, which
// reads counters any goroutine may read.
type Operator[In, Out any] interface {
	// Row handles one row at processing time now (Unix nanoseconds). An
	// error fails the row: it gets the stage's retries and error policy.
	// Changes made to state before the error stay.
	Row(ctx context.Context, e *Emitter[In, Out], v In, now int64) error
	// Advance fires what is due at watermark wm and processing time now;
	// both are EndOfInput when the input has ended. An error fails the
	// run.
	Advance(ctx context.Context, e *Emitter[In, Out], wm, now int64) error
	// Next returns the next processing-time deadline the operator waits
	// for, and false when it waits for none.
	Next() (int64, bool)
	// Stats returns the operator's state gauges.
	Stats() StateStats
	Snapshotter
}

// Snapshotter is the checkpoint contract of a stateful worker's state.
type Snapshotter interface {
	// SnapshotState captures the state as of now, cheaply, on the goroutine
	// that owns it, between batches. The returned write may run on another
	// goroutine while the stream goes on.
	SnapshotState(checkpoint uint64) (write func(w io.Writer) error, err error)
	// RestoreState replaces the state with one written by SnapshotState,
	// before the run starts. A snapshot of another layout is refused with
	// an error wrapping ErrLayout.
	RestoreState(r io.Reader) error
	// Layout identifies the encoding and shape of the state.
	Layout() string
}

// ErrLayout is the cause when a snapshot is restored into state of another
// layout.
var ErrLayout = errors.New("state snapshot of another layout")

// StateStats are the gauges of a stateful worker, or their sums over a
// node's workers.
type StateStats struct {
	// Keys is the number of state entries (keys with state, windows).
	Keys int64
	// Bytes estimates the memory of the state entries: the fixed size of
	// each entry's values, not what they point to.
	Bytes int64
	// Held counts rows held in state (window contents) not yet delivered.
	Held int64
	// Late counts rows that came after their window's allowed lateness.
	Late int64
	// Expired counts state entries removed by their time to live.
	Expired int64
}

func (s *StateStats) add(o StateStats) {
	s.Keys += o.Keys
	s.Bytes += o.Bytes
	s.Held += o.Held
	s.Late += o.Late
	s.Expired += o.Expired
}

// Watermarks derives event time and the watermark from the rows of a
// stream: the watermark is the highest event time seen less Bound, the
// minimum over the stream's sources; a source idle for Idle (processing
// time) holds it back no longer, and once every source is idle it follows
// the processing-time clock from the highest event time seen.
type Watermarks[In any] struct {
	// Time returns a row's event time in Unix nanoseconds.
	Time func(In) int64
	// Bound is the out-of-orderness allowed: how far behind the highest
	// event time seen a row may be and still be on time.
	Bound int64
	// Idle, if positive, is how long a source may send nothing before it
	// no longer holds the watermark back.
	Idle int64
	// Source, if set, names the source (partition) of a row; by default
	// the stream has one.
	Source func(In) int
}

// clock is a Watermarks' running state, owned by the goroutine that reads
// the node's input.
type clock[In any] struct {
	w       *Watermarks[In]
	srcs    map[int]*srcClock
	one     srcClock // when w.Source is nil
	wm      int64
	lastAny int64 // processing time of the last row
	maxAny  int64
}

type srcClock struct {
	max, last int64
}

func newClock[In any](w *Watermarks[In]) *clock[In] {
	if w == nil {
		return nil
	}
	return &clock[In]{w: w, srcs: map[int]*srcClock{}, wm: NoWatermark, one: srcClock{max: NoWatermark}, maxAny: NoWatermark}
}

// see records row v arriving at processing time now.
func (c *clock[In]) see(v In, now int64) {
	ts := c.w.Time(v)
	s := &c.one
	if c.w.Source != nil {
		id := c.w.Source(v)
		if s = c.srcs[id]; s == nil {
			s = &srcClock{max: NoWatermark}
			c.srcs[id] = s
		}
	}
	s.max = max(s.max, ts)
	s.last = now
	c.maxAny = max(c.maxAny, ts)
	c.lastAny = now
}

// at returns the watermark at processing time now; it never decreases.
func (c *clock[In]) at(now int64) int64 {
	if c.maxAny == NoWatermark {
		return c.wm
	}
	wm, busy := int64(math.MaxInt64), false
	consider := func(s *srcClock) {
		if s.max == NoWatermark || (c.w.Idle > 0 && now-s.last >= c.w.Idle) {
			return
		}
		busy = true
		wm = min(wm, sat(s.max, -c.w.Bound))
	}
	if c.w.Source == nil {
		consider(&c.one)
	} else {
		for _, s := range c.srcs {
			consider(s)
		}
	}
	if !busy {
		// Every source is idle: event time follows the processing clock.
		wm = sat(c.maxAny, now-c.lastAny-c.w.Idle)
	}
	c.wm = max(c.wm, wm)
	return c.wm
}

// clockSnap is a clock as a checkpoint holds it: event times as they
// were, processing times as ages (how long before the capture).
type clockSnap struct {
	sources bool // per source (Watermarks.Source set)
	wm      int64
	maxAny  int64
	ageAny  int64 // since the last row of any source
	srcs    []srcSnap
}

type srcSnap struct {
	id, max, age int64
}

// snapshot captures the clock at processing time now; nil for no clock.
func (c *clock[In]) snapshot(now int64) *clockSnap {
	if c == nil {
		return nil
	}
	age := func(last int64) int64 { return max(sat(now, -last), 0) }
	s := &clockSnap{sources: c.w.Source != nil, wm: c.wm, maxAny: c.maxAny, ageAny: age(c.lastAny)}
	if !s.sources {
		s.srcs = []srcSnap{{0, c.one.max, age(c.one.last)}}
		return s
	}
	s.srcs = make([]srcSnap, 0, len(c.srcs))
	for id, sc := range c.srcs {
		s.srcs = append(s.srcs, srcSnap{int64(id), sc.max, age(sc.last)})
	}
	slices.SortFunc(s.srcs, func(a, b srcSnap) int { return cmp.Compare(a.id, b.id) })
	return s
}

// restore makes the clock continue from s at processing time now (the
// start of a restored run). Event times are restored as they were. Of
// the processing times, the time the run was down does not count: a
// source that was idle at the capture stays idle with the age it had,
// and once every source is idle the watermark follows the clock from
// where it stood, not from where it would be had the clock run on; a
// source that was busy counts as seen now, so neither the time down nor
// the time sources take to resume turns it idle and lets another source
// carry the watermark past its next rows. A snapshot of another shape
// (with Sources and restored without, or the reverse) gives only the
// watermark: the sources start afresh.
func (c *clock[In]) restore(s *clockSnap, now int64) {
	if c == nil || s == nil {
		return
	}
	c.wm = max(c.wm, s.wm)
	if s.sources != (c.w.Source != nil) {
		return
	}
	busy := false
	last := func(age int64) int64 {
		if c.w.Idle > 0 && age >= c.w.Idle {
			return sat(now, -age)
		}
		busy = true
		return now
	}
	for _, ss := range s.srcs {
		if ss.max == NoWatermark {
			continue
		}
		sc := srcClock{max: ss.max, last: last(ss.age)}
		if s.sources {
			c.srcs[int(ss.id)] = &sc
		} else {
			c.one = sc
		}
	}
	c.maxAny = s.maxAny
	if c.maxAny == NoWatermark {
		return
	}
	if busy {
		c.lastAny = now
	} else {
		c.lastAny = sat(now, -s.ageAny)
	}
}

// nextIdle returns when the watermark may next move without input: the
// next time a busy source turns idle or, once every source is idle (the
// watermark then follows the clock) and holding says state waits for it,
// one Idle from now.
func (c *clock[In]) nextIdle(now int64, holding bool) (int64, bool) {
	if c == nil || c.w.Idle <= 0 || c.maxAny == NoWatermark {
		return 0, false
	}
	next, ok := int64(math.MaxInt64), false
	check := func(s *srcClock) {
		if t := s.last + c.w.Idle; t > now && t < next {
			next, ok = t, true
		}
	}
	if c.w.Source == nil {
		check(&c.one)
	} else {
		for _, s := range c.srcs {
			check(s)
		}
	}
	if !ok && holding {
		return now + c.w.Idle, true
	}
	return next, ok
}

// idling reports whether w has an idle timeout.
func idling[In any](w *Watermarks[In]) bool { return w != nil && w.Idle > 0 }

// sat returns a+b saturated to the int64 range.
func sat(a, b int64) int64 {
	s := a + b
	if b > 0 && s < a {
		return math.MaxInt64
	}
	if b < 0 && s > a {
		return math.MinInt64
	}
	return s
}

// Keyed is a keyed node's description; a pipeline runs it with
// [StartKeyed]. Build it with [NewKeyed].
type Keyed[In, Out any] struct {
	st      *Stage[In, Out]
	workers int
	hash    func(In) uint64
	marks   *Watermarks[In]
	newOp   func(worker int) Operator[In, Out]
	// Now returns the processing time in Unix nanoseconds; tests replace it.
	Now func() int64
	// StableHash says that hash routes a key to the same worker in every
	// process (see KeyHash): without it, state of several workers cannot
	// be restored.
	StableHash bool

	mu      sync.Mutex
	ops     []Operator[In, Out]
	restore [][]byte
	// restoreClock is the input clock to start from, with restore.
	restoreClock *clockSnap
	snaps        []chan snapReq
	// captured holds the workers' snapshots for checkpoint capturedAt
	// while its barrier goes through, capturedClock the input clock as
	// the barrier reached the node, and finalClock the input clock once
	// the goroutine reading the input ended (see keyed_checkpoint.go).
	captured      []func(io.Writer) error
	capturedClock *clockSnap
	capturedAt    uint64
	finalClock    *clockSnap
	layout        string
}

// NewKeyed returns a keyed node named name with n workers: hash routes
// each row to worker hash%n, marks (nil for none) gives the event time
// and watermark, newOp makes each worker's operator. opts are stage
// options (error policy, retries, timeout, buffer; Concurrency is n).
func NewKeyed[In, Out any](name string, n int, hash func(In) uint64, marks *Watermarks[In], newOp func(worker int) Operator[In, Out], opts ...Option) *Keyed[In, Out] {
	if n < 1 {
		panic("keyed: " + name + ": fewer than one worker")
	}
	if hash == nil || newOp == nil {
		panic("keyed: " + name + ": nil key or operator")
	}
	st := newStage[In, Out](name, KindCalculate, append(opts, Concurrency(n)))
	return &Keyed[In, Out]{st: st, workers: n, hash: hash, marks: marks, newOp: newOp,
		Now: func() int64 { return time.Now().UnixNano() }}
}

// Stage returns the node's stage description (name, options).
func (k *Keyed[In, Out]) Stage() *Stage[In, Out] { return k.st }

// Goroutines returns how many goroutines the node runs.
func (k *Keyed[In, Out]) Goroutines() int {
	if k.workers == 1 {
		return 1
	}
	return k.workers + 1
}

// Stats returns the sum of the workers' state gauges.
func (k *Keyed[In, Out]) Stats() StateStats {
	k.mu.Lock()
	defer k.mu.Unlock()
	var s StateStats
	for _, op := range k.ops {
		s.add(op.Stats())
	}
	return s
}

// Restore makes the workers start from the snapshots in states, one per
// worker, written by Snapshot. Call it before the run starts.
func (k *Keyed[In, Out]) Restore(states [][]byte) error {
	if len(states) != k.workers {
		return &Error{Stage: k.st.name, Err: errors.Join(ErrLayout, errors.New("snapshot of a different number of workers"))}
	}
	if k.workers > 1 && !k.StableHash {
		return &Error{Stage: k.st.name, Err: errors.Join(ErrLayout, errors.New("keys of this type are not routed to the same worker in every process: restoring several workers needs string, integer, boolean or float keys"))}
	}
	k.mu.Lock()
	k.restore, k.restoreClock = states, nil
	k.mu.Unlock()
	return nil
}

// inputClock returns the clock of the goroutine that reads the node's
// input: a new one, continuing from the restored one if any.
func (k *Keyed[In, Out]) inputClock() *clock[In] {
	c := newClock(k.marks)
	k.mu.Lock()
	s := k.restoreClock
	k.finalClock = nil
	k.mu.Unlock()
	c.restore(s, k.Now())
	return c
}

// keepClock records c, the input clock of a goroutine that ends, for the
// node's final capture.
func (k *Keyed[In, Out]) keepClock(c *clock[In]) {
	s := c.snapshot(k.Now())
	k.mu.Lock()
	k.finalClock = s
	k.mu.Unlock()
}

// snapReq asks a worker for a snapshot between two batches.
type snapReq struct {
	checkpoint uint64
	reply      chan snapReply
}

type snapReply struct {
	write func(io.Writer) error
	err   error
}

// Snapshot asks every running worker for a snapshot of its state between
// two batches, and returns the writers, one per worker in worker order.
// It fails when ctx ends or the run is not running.
func (k *Keyed[In, Out]) Snapshot(ctx context.Context, checkpoint uint64) ([]func(io.Writer) error, error) {
	k.mu.Lock()
	snaps := k.snaps
	k.mu.Unlock()
	if snaps == nil {
		return nil, &Error{Stage: k.st.name, Err: ErrStopped}
	}
	out := make([]func(io.Writer) error, len(snaps))
	for i, ch := range snaps {
		req := snapReq{checkpoint, make(chan snapReply, 1)}
		select {
		case ch <- req:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
		select {
		case r := <-req.reply:
			if r.err != nil {
				return nil, &Error{Stage: k.st.name, Err: r.err}
			}
			out[i] = r.write
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	return out, nil
}

// keyedTask is one batch for one worker, with the watermark after it.
type keyedTask[In any] struct {
	b  *Batch[In]
	wm int64
	r  *keyedRound // a barrier's token, instead of b
}

// StartKeyed runs node k in goroutines started with env.Go: it reads in
// until in is closed or ctx is done and sends results to out and rows
// after their window's lateness to late (nil: they count Filtered).
func StartKeyed[In, Out any](ctx context.Context, k *Keyed[In, Out], env *Env, in *Edge[In], out *Edge[Out], late *Edge[In]) error {
	ops := make([]Operator[In, Out], k.workers)
	k.mu.Lock()
	restore := k.restore
	k.mu.Unlock()
	for i := range ops {
		ops[i] = k.newOp(i)
		if restore != nil {
			if err := ops[i].RestoreState(bytes.NewReader(restore[i])); err != nil {
				return &Error{Flow: env.Flow, Stage: k.st.name, Err: err}
			}
		}
	}
	snaps := make([]chan snapReq, k.workers)
	for i := range snaps {
		snaps[i] = make(chan snapReq)
	}
	k.mu.Lock()
	k.ops, k.snaps = ops, snaps
	k.mu.Unlock()

	running := atomic.Int32{}
	running.Store(int32(k.workers))
	done := func() {
		if running.Add(-1) == 0 {
			k.mu.Lock()
			k.snaps = nil
			k.mu.Unlock()
			out.CloseWriter()
			if late != nil {
				late.CloseWriter()
			}
		}
	}
	if k.workers == 1 {
		kw := newKeyedWorker(k, env, 0, ops[0], out, late, snaps[0])
		kw.clock = k.inputClock()
		env.Go(func() error {
			defer done()
			defer k.keepClock(kw.clock)
			return ending(kw.loop(ctx, in, nil))
		})
		return nil
	}
	tasks := make([]chan keyedTask[In], k.workers)
	for i := range tasks {
		tasks[i] = make(chan keyedTask[In], 2)
	}
	// Dispatcher: split each batch by key, with the stream's watermark.
	env.Go(func() error {
		defer func() {
			for _, t := range tasks {
				close(t)
			}
		}()
		return ending(dispatchKeyed(ctx, k, env, in, tasks))
	})
	for i := range k.workers {
		kw := newKeyedWorker(k, env, i, ops[i], out, late, snaps[i])
		env.Go(func() error {
			defer done()
			return ending(kw.loop(ctx, nil, tasks[i]))
		})
	}
	return nil
}

// dispatchKeyed reads in, counts rows in, splits each batch by key hash
// and sends the parts to the workers with the watermark after the batch.
// When the stream has an idle timeout, it also sends a watermark alone
// when a source turns idle.
func dispatchKeyed[In, Out any](ctx context.Context, k *Keyed[In, Out], env *Env, in *Edge[In], tasks []chan keyedTask[In]) error {
	pool := PoolOf[In]()
	parts := make([]*Batch[In], len(tasks))
	clk := k.inputClock()
	var timer *time.Timer
	var tc <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
		k.keepClock(clk)
	}()
	send := func(i int, t keyedTask[In]) error {
		select {
		case tasks[i] <- t:
			return nil
		case <-ctx.Done():
			return errEnding // the batch's rows were counted in: Settle abandons them
		}
	}
	lastWM := int64(NoWatermark)
	for {
		now := k.Now()
		if next, ok := clk.nextIdle(now, idling(k.marks) && k.Stats().Keys > 0); ok {
			d := time.Duration(next - now)
			if timer == nil {
				timer = time.NewTimer(max(d, 0))
			} else {
				timer.Reset(max(d, 0))
			}
			tc = timer.C
		}
		var b *Batch[In]
		var ok bool
		select {
		case b, ok = <-in.C():
			if !ok {
				for i := range tasks {
					if err := send(i, keyedTask[In]{wm: EndOfInput}); err != nil {
						return err
					}
				}
				return nil
			}
		case <-tc:
			tc = nil
			if wm := clk.at(k.Now()); wm != lastWM {
				lastWM = wm
				for i := range tasks {
					if err := send(i, keyedTask[In]{wm: wm}); err != nil {
						return err
					}
				}
			}
			continue
		case <-ctx.Done():
			return nil
		}
		in.Took(b)
		if b.barrier != 0 {
			// One token per worker (see keyedRound), with the clock as
			// the barrier reached the node.
			r := &keyedRound{k: b.barrier, n: int32(len(tasks)), all: make(chan struct{}), clock: clk.snapshot(k.Now())}
			for i := range tasks {
				if err := send(i, keyedTask[In]{wm: lastWM, r: r}); err != nil {
					return err
				}
			}
			continue
		}
		env.Counters.Take(int64(len(b.Rows)))
		now = k.Now()
		n := uint64(len(tasks))
		for _, v := range b.Rows {
			if clk != nil {
				clk.see(v, now)
			}
			i := k.hash(v) % n
			if parts[i] == nil {
				parts[i] = pool.Get(len(b.Rows) / len(tasks))
			}
			parts[i].Rows = append(parts[i].Rows, v)
		}
		wm := int64(NoWatermark)
		if clk != nil {
			wm = clk.at(now)
		}
		for _, p := range parts {
			if p != nil {
				ShareTrackers(p, b)
			}
		}
		pool.Put(b)
		for i := range parts {
			t := keyedTask[In]{b: parts[i], wm: wm}
			parts[i] = nil
			if t.b == nil && wm == lastWM {
				continue
			}
			if err := send(i, t); err != nil {
				return err
			}
		}
		lastWM = wm
	}
}

// keyedWorker is one goroutine of a keyed node: a stage worker (for the
// per-row error handling, retries and counting) around an Operator.
type keyedWorker[In, Out any] struct {
	k     *Keyed[In, Out]
	i     int // the worker's number
	w     *worker[In, Out]
	op    Operator[In, Out]
	out   *Edge[Out]
	late  *Edge[In]
	snap  chan snapReq
	clock *clock[In] // set when the worker reads the input itself
	em    Emitter[In, Out]
	wm    int64
	// noHold says the pipeline checkpoints: state holds no trackers.
	noHold bool
}

func newKeyedWorker[In, Out any](k *Keyed[In, Out], env *Env, i int, op Operator[In, Out], out *Edge[Out], late *Edge[In], snap chan snapReq) *keyedWorker[In, Out] {
	kw := &keyedWorker[In, Out]{k: k, i: i, op: op, out: out, late: late, snap: snap, wm: NoWatermark, noHold: env.Barrier != nil}
	st := *k.st
	st.loop = func(ctx context.Context, w *worker[In, Out], rows []In) (int, error) {
		now := k.Now()
		for i, v := range rows {
			w.pos, w.mark = i, len(w.out.Rows)
			if kw.clock != nil {
				kw.clock.see(v, now)
			}
			if err := op.Row(ctx, &kw.em, v, now); err != nil {
				w.truncate(w.mark)
				return i, err
			}
		}
		return len(rows), nil
	}
	kw.w = newWorker(&st, env)
	kw.em = Emitter[In, Out]{kw: kw, outPool: PoolOf[Out](), inPool: PoolOf[In]()}
	return kw
}

// loop is the worker's goroutine: it takes batches from in (one worker)
// or tasks (several), fires processing-time timers when they are due, and
// answers snapshot requests between batches.
func (kw *keyedWorker[In, Out]) loop(ctx context.Context, in *Edge[In], tasks <-chan keyedTask[In]) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var inC <-chan *Batch[In]
	if in != nil {
		inC = in.C()
	}
	wctx := kw.w.context(ctx)
	for {
		var tc <-chan time.Time
		next, ok := kw.op.Next()
		if idle, iok := kw.clock.nextIdle(kw.k.Now(), idling(kw.k.marks) && kw.op.Stats().Keys > 0); iok && (!ok || idle < next) {
			next, ok = idle, true
		}
		if ok {
			d := time.Duration(next - kw.k.Now())
			if timer == nil {
				timer = time.NewTimer(max(d, 0))
			} else {
				timer.Reset(max(d, 0))
			}
			tc = timer.C
		} else if timer != nil {
			timer.Stop()
		}
		select {
		case b, ok := <-inC:
			if !ok {
				return kw.advance(ctx, EndOfInput, EndOfInput)
			}
			in.Took(b)
			if b.barrier != 0 {
				r := &keyedRound{k: b.barrier, n: 1, all: make(chan struct{}), clock: kw.clock.snapshot(kw.k.Now())}
				if err := kw.passKeyed(ctx, r); err != nil {
					return err
				}
				continue
			}
			kw.w.env.Counters.Take(int64(len(b.Rows)))
			if err := kw.batch(wctx, b); err != nil {
				return err
			}
			wm := kw.wm
			if kw.clock != nil {
				wm = kw.clock.at(kw.k.Now())
			}
			if err := kw.advance(ctx, wm, kw.k.Now()); err != nil {
				return err
			}
		case t, ok := <-tasks:
			if !ok {
				return nil // the dispatcher ended before the input: the run is ending
			}
			if t.r != nil {
				if err := kw.passKeyed(ctx, t.r); err != nil {
					return err
				}
				continue
			}
			if t.wm == EndOfInput {
				return kw.advance(ctx, EndOfInput, EndOfInput)
			}
			if t.b != nil {
				if err := kw.batch(wctx, t.b); err != nil {
					return err
				}
			}
			if err := kw.advance(ctx, max(kw.wm, t.wm), kw.k.Now()); err != nil {
				return err
			}
		case <-tc:
			wm := kw.wm
			if kw.clock != nil {
				wm = kw.clock.at(kw.k.Now())
			}
			if err := kw.advance(ctx, wm, kw.k.Now()); err != nil {
				return err
			}
		case req := <-kw.snap:
			write, err := kw.op.SnapshotState(req.checkpoint)
			req.reply <- snapReply{write, err}
		case <-ctx.Done():
			return nil
		}
	}
}

// batch runs the operator over one batch through the stage worker and
// sends what it emitted.
func (kw *keyedWorker[In, Out]) batch(ctx context.Context, b *Batch[In]) error {
	em := &kw.em
	em.inBatch, em.seq = true, em.seq+1
	em.absorbed, em.released, em.lateN = 0, 0, 0
	o, passed, err := kw.w.process(ctx, b)
	em.inBatch = false
	if err != nil {
		em.dropLate()
		return err
	}
	if err := em.flushLate(ctx); err != nil {
		return err
	}
	passed += em.released - em.absorbed - em.lateN
	return kw.w.send(ctx, o, passed, kw.out)
}

// advance fires what is due and sends it.
func (kw *keyedWorker[In, Out]) advance(ctx context.Context, wm, now int64) error {
	kw.wm = max(kw.wm, wm)
	em := &kw.em
	em.released = 0
	err := kw.w.safe(func() error { return kw.op.Advance(ctx, em, kw.wm, now) })
	o := em.fired
	em.fired = nil
	if err != nil {
		// o is dropped, not put back: the trackers it carries stay
		// unreleased, so their input is never acknowledged.
		if ctx.Err() != nil {
			return nil
		}
		return &Error{Flow: kw.w.env.Flow, Stage: kw.k.st.name, Err: err}
	}
	if o == nil {
		if em.released != 0 {
			kw.w.env.Counters.Pass(em.released, 0)
		}
		return nil
	}
	return kw.w.send(ctx, o, em.released, kw.out)
}

// Emitter is what an Operator emits through: results, late rows, and the
// accounting of rows it holds in state.
type Emitter[In, Out any] struct {
	kw       *keyedWorker[In, Out]
	outPool  *Pool[Out]
	inPool   *Pool[In]
	inBatch  bool        // inside Row: results go to the worker's batch
	fired    *Batch[Out] // results of Advance
	lateB    *Batch[In]
	seq      uint64 // of the batch being processed
	absorbed int64
	released int64
	lateN    int64
}

func (e *Emitter[In, Out]) batch() *Batch[Out] {
	if e.inBatch {
		return e.kw.w.out
	}
	if e.fired == nil {
		e.fired = e.outPool.Get(64)
	}
	return e.fired
}

// Emit sends v on.
func (e *Emitter[In, Out]) Emit(v Out) {
	b := e.batch()
	b.Rows = append(b.Rows, v)
}

// Absorb records that the row being processed is now held in state: it
// is counted Delivered when released.
func (e *Emitter[In, Out]) Absorb() { e.absorbed++ }

// Filter records that the row being processed was dropped.
func (e *Emitter[In, Out]) Filter() { e.kw.w.filtered++ }

// Late sends the row being processed to the late stream, or counts it
// Filtered when nothing reads late rows.
func (e *Emitter[In, Out]) Late(v In) {
	if e.kw.late == nil {
		e.kw.w.filtered++
		return
	}
	if e.lateB == nil {
		e.lateB = e.inPool.Get(16)
		e.lateB.Inherit(e.kw.w.cur, e.kw.w.cur.hops)
	}
	e.lateB.Rows = append(e.lateB.Rows, v)
	e.lateN++
}

func (e *Emitter[In, Out]) dropLate() {
	if e.lateB != nil {
		e.lateB.Rows = e.lateB.Rows[:0]
		e.inPool.Put(e.lateB)
		e.lateB = nil
	}
}

func (e *Emitter[In, Out]) flushLate(ctx context.Context) error {
	b := e.lateB
	if b == nil {
		return nil
	}
	e.lateB = nil
	n := int64(len(b.Rows))
	if err := e.kw.late.Send(ctx, b); err != nil {
		if ctx.Err() != nil {
			return errEnding
		}
		return &Error{Flow: e.kw.w.env.Flow, Stage: e.kw.k.st.name, Err: err}
	}
	e.kw.w.env.Counters.Pass(n, n)
	return nil
}

// Seq identifies the batch being processed, so an operator holding its
// trackers takes them once per batch.
func (e *Emitter[In, Out]) Seq() uint64 { return e.seq }

// Hold returns the trackers of the batch being processed, each retained
// once more for the caller, who hands them back with Release (or drops
// them, abandoning their input, when the run ends). When the pipeline
// checkpoints it returns none: the checkpoint that captures the state
// covers the rows absorbed into it, so their input's acknowledgement
// waits for that checkpoint rather than for the state to release them.
func (e *Emitter[In, Out]) Hold(dst []*Tracker) []*Tracker {
	if e.kw.noHold {
		return dst
	}
	for _, t := range e.kw.w.cur.trackers {
		if t.unheld {
			continue
		}
		t.Retain(1)
		dst = append(dst, t)
	}
	return dst
}

// Tracked reports whether the batch being processed carries trackers.
func (e *Emitter[In, Out]) Tracked() bool { return len(e.kw.w.cur.trackers) > 0 }

// NewUnheldTracker is NewTracker for a tracker that state never holds: it
// stands for a batch being in flight through the graph (what keeps a
// pipeline's feedback streams open), not for input waiting to be
// acknowledged, so a row absorbed into a window releases it with its
// batch. Holding it would keep a feedback stream open until the window
// fires, and the window fires only once its input, merged with that
// stream, ends.
func NewUnheldTracker(done func()) *Tracker {
	t := NewTracker(done)
	t.unheld = true
	return t
}

// Release records that rows held rows leave state, delivered, and hands
// over the trackers held for them: they travel with the results emitted
// so far, so their input is acknowledged once those are handled.
func (e *Emitter[In, Out]) Release(rows int64, ts []*Tracker) {
	e.released += rows
	if len(ts) == 0 {
		return
	}
	b := e.batch()
	b.trackers = append(b.trackers, ts...)
}

// Fail counts rows held in state as failed with err (a window whose
// function failed at firing, under a policy other than FailFlow) and
// releases their trackers: they are handled.
func (e *Emitter[In, Out]) Fail(rows int64, ts []*Tracker, err error) {
	e.kw.w.env.Counters.AddFailed(rows, err)
	for _, t := range ts {
		t.Release()
	}
}

// Policy returns the node's error policy.
func (e *Emitter[In, Out]) Policy() ErrorPolicy { return e.kw.k.st.cfg.onError }

// Lineage returns the lineage of the batch being processed.
func (e *Emitter[In, Out]) Lineage() Lineage { return e.kw.w.cur }

// Share makes the results emitted so far also wait for the trackers ts
// (held by a window that fired but stays open): each is retained once
// more for the output batch.
func (e *Emitter[In, Out]) Share(ts []*Tracker) {
	if len(ts) == 0 {
		return
	}
	b := e.batch()
	for _, t := range ts {
		t.Retain(1)
		b.trackers = append(b.trackers, t)
	}
}

// ErrStateFull is the cause when a row needs a new state entry (a key's
// state, a window) and the node's state is at its limit. The row gets the
// stage's error policy: by default the run fails.
var ErrStateFull = errors.New("keyed state full")

// NewEmitter returns an emitter attached to no node, for driving an
// Operator directly (tests, tools): what the operator emits accumulates
// until Take; late rows count as filtered.
func NewEmitter[In, Out any]() *Emitter[In, Out] {
	st := newStage[In, Out]("emitter", KindCalculate, nil)
	kw := &keyedWorker[In, Out]{k: &Keyed[In, Out]{st: st}, w: newWorker(st, &Env{Counters: &Counters{}})}
	kw.em = Emitter[In, Out]{kw: kw, outPool: PoolOf[Out](), inPool: PoolOf[In]()}
	return &kw.em
}

// Take returns the rows emitted outside a batch since the last Take, and
// releases the trackers they carried.
func (e *Emitter[In, Out]) Take() []Out {
	if e.fired == nil {
		return nil
	}
	out := append([]Out(nil), e.fired.Rows...)
	e.outPool.Put(e.fired)
	e.fired = nil
	return out
}

// Len returns how many results the batch being filled holds, for
// Truncate.
func (e *Emitter[In, Out]) Len() int { return len(e.batch().Rows) }

// Truncate drops the results emitted after the batch held n: those of a
// call that failed.
func (e *Emitter[In, Out]) Truncate(n int) {
	b := e.batch()
	if len(b.Rows) > n {
		clear(b.Rows[n:])
		b.Rows = b.Rows[:n]
	}
}
