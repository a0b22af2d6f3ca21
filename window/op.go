package window

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/kisflow/kisflow/internal/engine"
)

// core is what every worker of one window operator shares: the windows,
// the functions and the limits. It is immutable once built.
type core[T any, K comparable, A, V any] struct {
	name       string
	win        Windows
	key        func(T) K
	event      func(T) int64 // nil: processing time
	lateness   int64
	earlyCount int64
	earlyEvery int64
	maxWindows int
	maxBytes   int64
	entryBytes int64
	layout     string
	now        func() int64

	add   func(A, T) A
	merge func(A, A) A
	reset func(A) A // an emptied accumulator, reusing what it can
	clone func(A) A // a copy that later adds do not change
	size  func(A) int64
	fire  func(ctx context.Context, emit func(Result[K, V]), r Result[K, V], acc A) error
}

// slot is one window of one key.
type slot[K comparable, A any] struct {
	key        K
	start, end int64
	acc        A
	count      int64 // rows in the window: Result.Count
	held       int64 // rows whose last window this is: Delivered when it is purged
	pending    int64 // rows since the last firing
	fired      bool  // the on-time firing is done
	live       bool
	gen        uint32
	next       int32 // the key's next session; the next free slot
	earlyAt    int64 // processing time of the pending early firing, 0 if none
	seq        uint64
	trackers   []*engine.Tracker
}

type wkey[K comparable] struct {
	key   K
	start int64
}

// op is one worker's windows: an engine.Operator.
type op[T any, K comparable, A, V any] struct {
	c        *core[T, K, A, V]
	slots    []slot[K, A]
	free     int32 // head of the free list, -1 if empty
	index    map[wkey[K]]int32
	sessions map[K]int32 // head of each key's list of sessions
	due      timers      // firings and purges, in the windows' time domain
	early    timers      // early firings, in processing time
	wm       int64

	open, held, bytes, late int64
	pub                     struct{ keys, bytes, held, late atomic.Int64 }

	ctx  context.Context
	em   *engine.Emitter[T, Result[K, V]]
	emit func(Result[K, V])
}

func newOp[T any, K comparable, A, V any](c *core[T, K, A, V]) *op[T, K, A, V] {
	o := &op[T, K, A, V]{c: c, free: -1, wm: engine.NoWatermark}
	if c.win.kind == session {
		o.sessions = map[K]int32{}
	} else {
		o.index = map[wkey[K]]int32{}
	}
	o.emit = func(r Result[K, V]) { o.em.Emit(r) }
	return o
}

// alloc returns a free slot for a new window, or an error at the limit.
func (o *op[T, K, A, V]) alloc(k K, start, end int64) (int32, error) {
	if int(o.open) >= o.c.maxWindows || (o.c.maxBytes > 0 && o.bytes+o.c.entryBytes > o.c.maxBytes) {
		return -1, fmt.Errorf("%w: %d windows, %d bytes (window %s)", ErrStateFull, o.open, o.bytes, o.c.name)
	}
	var i int32
	if o.free >= 0 {
		i = o.free
		o.free = o.slots[i].next
	} else {
		o.slots = append(o.slots, slot[K, A]{acc: o.c.reset(*new(A))})
		i = int32(len(o.slots) - 1)
	}
	s := &o.slots[i]
	s.key, s.start, s.end, s.live, s.next = k, start, end, true, -1
	o.open++
	o.bytes += o.c.entryBytes
	return i, nil
}

// release frees slot i; its accumulator is emptied for the next window.
func (o *op[T, K, A, V]) release(i int32) {
	s := &o.slots[i]
	o.bytes -= o.c.entryBytes + o.c.size(s.acc)
	s.acc = o.c.reset(s.acc)
	s.count, s.held, s.pending, s.fired, s.live, s.earlyAt, s.seq = 0, 0, 0, false, false, 0, 0
	s.gen++
	clear(s.trackers)
	s.trackers = s.trackers[:0]
	var zero K
	s.key = zero
	s.next = o.free
	o.free = i
	o.open--
}

// expired reports whether an event-time window ending at end is past its
// allowed lateness.
func (o *op[T, K, A, V]) expired(end int64) bool {
	return o.c.event != nil && o.wm != engine.NoWatermark && o.wm-o.c.lateness >= end
}

// Row implements engine.Operator.
func (o *op[T, K, A, V]) Row(ctx context.Context, e *engine.Emitter[T, Result[K, V]], v T, now int64) error {
	o.ctx, o.em = ctx, e
	ts := now
	if o.c.event != nil {
		ts = o.c.event(v)
	}
	k := o.c.key(v)
	if o.c.win.kind == session {
		return o.session(e, v, k, ts, now)
	}
	w := o.c.win
	last := floorDiv(ts, w.slide) * w.slide
	// A pre-pass checks the limit, so a row is added to all its windows
	// or to none.
	need := 0
	for start := last; int(o.open)+int(w.size/w.slide)+1 > o.c.maxWindows || o.c.maxBytes > 0; start -= w.slide {
		if start <= ts-w.size {
			break
		}
		if !o.expired(start + w.size) {
			if _, ok := o.index[wkey[K]{k, start}]; !ok {
				need++
			}
		}
	}
	if need > 0 && (int(o.open)+need > o.c.maxWindows || (o.c.maxBytes > 0 && o.bytes+int64(need)*o.c.entryBytes > o.c.maxBytes)) {
		return fmt.Errorf("%w: %d windows, %d bytes (window %s)", ErrStateFull, o.open, o.bytes, o.c.name)
	}
	accepted := false
	for start := last; start > ts-w.size; start -= w.slide {
		end := start + w.size
		if o.expired(end) {
			continue
		}
		i, ok := o.index[wkey[K]{k, start}]
		if !ok {
			var err error
			if i, err = o.alloc(k, start, end); err != nil {
				return err
			}
			o.index[wkey[K]{k, start}] = i
			o.due.push(timer{at: end, slot: i, gen: o.slots[i].gen})
		}
		if err := o.addTo(e, i, v, now, !accepted); err != nil {
			return err
		}
		accepted = true
	}
	if !accepted {
		o.late++
		e.Late(v)
		return nil
	}
	e.Absorb()
	return nil
}

// addTo folds v into window i, holds the batch's trackers for it, and
// fires it early or late when due. last says whether it is the row's last
// window (the one that holds it until it is purged).
func (o *op[T, K, A, V]) addTo(e *engine.Emitter[T, Result[K, V]], i int32, v T, now int64, last bool) error {
	s := &o.slots[i]
	before := o.c.size(s.acc)
	s.acc = o.c.add(s.acc, v)
	o.bytes += o.c.size(s.acc) - before
	s.count++
	s.pending++
	if last {
		s.held++
		o.held++
	}
	if e.Tracked() && s.seq != e.Seq() {
		s.seq = e.Seq()
		s.trackers = e.Hold(s.trackers)
	}
	switch {
	case s.fired || o.reached(s.end):
		// Within the allowed lateness: the update goes out now.
		if !s.fired {
			s.fired = true
			o.schedule(i)
		}
		if err := o.fireSlot(i, Late); err != nil {
			return o.failed(i, err)
		}
	case o.c.earlyCount > 0 && s.pending >= o.c.earlyCount:
		if err := o.fireSlot(i, Early); err != nil {
			return o.failed(i, err)
		}
	case o.c.earlyEvery > 0 && s.earlyAt == 0:
		s.earlyAt = now + o.c.earlyEvery
		o.early.push(timer{at: s.earlyAt, slot: i, gen: s.gen})
	}
	return nil
}

// schedule replaces window i's timers after its end or state changed:
// its purge once fired, its firing otherwise, and its early firing.
func (o *op[T, K, A, V]) schedule(i int32) {
	s := &o.slots[i]
	s.gen++
	if s.fired {
		o.due.push(timer{at: o.purgeAt(s.end), slot: i, gen: s.gen, purge: true})
	} else {
		o.due.push(timer{at: s.end, slot: i, gen: s.gen})
	}
	if s.earlyAt != 0 {
		o.early.push(timer{at: s.earlyAt, slot: i, gen: s.gen})
	}
}

// session adds v at ts to key k's sessions, merging those it joins.
func (o *op[T, K, A, V]) session(e *engine.Emitter[T, Result[K, V]], v T, k K, ts, now int64) error {
	gap := o.c.win.gap
	if o.c.event != nil && o.wm != engine.NoWatermark && ts < o.wm-o.c.lateness {
		// Late: such a row could only join sessions already purged.
		o.late++
		e.Late(v)
		return nil
	}
	start, end := ts, ts+gap
	// Find the sessions [start, end) overlaps or touches; merge into the
	// first, unlink the others.
	head, ok := o.sessions[k]
	target := int32(-1)
	prev := int32(-1)
	merged := false
	for i := head; ok && i >= 0; {
		s := &o.slots[i]
		next := s.next
		if s.start <= end && start <= s.end {
			if target < 0 {
				target = i
				prev = i
			} else {
				o.mergeInto(target, i)
				merged = true
				o.slots[prev].next = next
				o.release(i)
			}
		} else {
			prev = i
		}
		i = next
	}
	if target < 0 {
		i, err := o.alloc(k, start, end)
		if err != nil {
			return err
		}
		if ok {
			o.slots[i].next = head
		}
		o.sessions[k] = i
		target = i
	}
	s := &o.slots[target]
	if start < s.start || end > s.end || s.count == 0 || merged {
		s.start, s.end = min(s.start, start), max(s.end, end)
		// An extended session fires again unless the clock is past its
		// new end too (then addTo emits the update now).
		s.fired = s.fired && o.reached(s.end)
		o.schedule(target)
	}
	if err := o.addTo(e, target, v, now, true); err != nil {
		return err
	}
	e.Absorb()
	return nil
}

// purgeAt returns when a window ending at end is purged: once the
// watermark passed its end by the allowed lateness, and for a session one
// nanosecond later, so that a row on time can never touch a purged
// session (a row at t is late for sessions when t < watermark-lateness).
func (o *op[T, K, A, V]) purgeAt(end int64) int64 {
	if o.c.event == nil {
		return end
	}
	at := sat(end, o.c.lateness)
	if o.c.win.kind == session {
		at = sat(at, 1)
	}
	return at
}

// reached reports whether the windows' clock has passed t.
func (o *op[T, K, A, V]) reached(t int64) bool {
	if o.c.event != nil {
		return o.wm != engine.NoWatermark && o.wm >= t
	}
	return o.c.now() >= t
}

// mergeInto merges session j into session i (both live, one key).
func (o *op[T, K, A, V]) mergeInto(i, j int32) {
	a, b := &o.slots[i], &o.slots[j]
	before := o.c.size(a.acc) + o.c.size(b.acc)
	a.acc = o.c.merge(a.acc, b.acc)
	o.bytes += o.c.size(a.acc) - before
	a.start, a.end = min(a.start, b.start), max(a.end, b.end)
	a.count += b.count
	a.held += b.held
	a.pending += b.pending
	a.fired = a.fired || b.fired
	a.trackers = append(a.trackers, b.trackers...)
	clear(b.trackers)
	b.trackers = b.trackers[:0]
	b.held = 0 // moved to a; release must not count them
	b.acc = o.c.reset(b.acc)
	if a.earlyAt == 0 || (b.earlyAt != 0 && b.earlyAt < a.earlyAt) {
		a.earlyAt = b.earlyAt
	}
}

// fireSlot emits window i's result with firing f.
func (o *op[T, K, A, V]) fireSlot(i int32, f Firing) error {
	s := &o.slots[i]
	r := Result[K, V]{Key: s.key, Start: time.Unix(0, s.start).UTC(), End: time.Unix(0, s.end).UTC(), Count: s.count, Firing: f}
	s.pending = 0
	if err := o.callFire(r, s.acc); err != nil {
		return err
	}
	// The result's batch holds the window's input too, so that input is
	// acknowledged only once every result derived from it is handled.
	o.em.Share(s.trackers)
	return nil
}

// callFire calls the firing function, turning a panic into an error and
// dropping what a failed call emitted.
func (o *op[T, K, A, V]) callFire(r Result[K, V], acc A) (err error) {
	mark := o.em.Len()
	defer func() {
		if p := recover(); p != nil {
			err = &engine.PanicError{Value: p, Stack: debug.Stack()}
		}
		if err != nil {
			o.em.Truncate(mark)
		}
	}()
	return o.c.fire(o.ctx, o.emit, r, acc)
}

// purge emits nothing more for window i and frees it: its rows are
// delivered and their trackers travel with the results emitted so far.
func (o *op[T, K, A, V]) purge(i int32) {
	s := &o.slots[i]
	o.em.Release(s.held, s.trackers)
	o.held -= s.held
	clear(s.trackers) // handed over
	s.trackers = s.trackers[:0]
	if o.c.win.kind == session {
		o.unlinkSession(i)
	} else {
		delete(o.index, wkey[K]{s.key, s.start})
	}
	o.release(i)
}

func (o *op[T, K, A, V]) unlinkSession(i int32) {
	k := o.slots[i].key
	head := o.sessions[k]
	if head == i {
		if n := o.slots[i].next; n >= 0 {
			o.sessions[k] = n
		} else {
			delete(o.sessions, k)
		}
		return
	}
	for j := head; j >= 0; j = o.slots[j].next {
		if o.slots[j].next == i {
			o.slots[j].next = o.slots[i].next
			return
		}
	}
}

// Advance implements engine.Operator: it fires and purges the windows the
// watermark (or the clock) has passed, and the early firings due.
func (o *op[T, K, A, V]) Advance(ctx context.Context, e *engine.Emitter[T, Result[K, V]], wm, now int64) error {
	o.ctx, o.em = ctx, e
	if o.c.event != nil {
		o.wm = max(o.wm, wm)
	}
	clock := now
	if o.c.event != nil {
		clock = o.wm
	}
	for len(o.early) > 0 && o.early[0].at <= now {
		t := o.early.pop()
		s := &o.slots[t.slot]
		if !s.live || s.gen != t.gen || s.earlyAt != t.at {
			continue
		}
		s.earlyAt = 0
		// At the end of input the on-time firing follows at once: no
		// early one before it.
		if !s.fired && s.pending > 0 && now != engine.EndOfInput {
			if err := o.fireSlot(t.slot, Early); err != nil {
				if err := o.failed(t.slot, err); err != nil {
					return err
				}
			}
		}
	}
	for len(o.due) > 0 && o.due[0].at <= clock {
		t := o.due.pop()
		s := &o.slots[t.slot]
		if !s.live || s.gen != t.gen {
			continue
		}
		if !t.purge {
			if err := o.fireSlot(t.slot, OnTime); err != nil {
				if err := o.failed(t.slot, err); err != nil {
					return err
				}
				continue
			}
			s.fired = true
			if at := o.purgeAt(s.end); at > clock {
				o.due.push(timer{at: at, slot: t.slot, gen: s.gen, purge: true})
				continue
			}
		}
		o.purge(t.slot)
	}
	o.publish()
	return nil
}

// failed handles a firing that failed: under FailFlow the run fails;
// otherwise the window's rows count Failed and the window is dropped.
func (o *op[T, K, A, V]) failed(i int32, err error) error {
	err = fmt.Errorf("window %s: key %v [%s, %s): %w", o.c.name, o.slots[i].key,
		time.Unix(0, o.slots[i].start).UTC().Format(time.RFC3339Nano), time.Unix(0, o.slots[i].end).UTC().Format(time.RFC3339Nano), err)
	if o.em.Policy() == engine.FailFlow {
		return err
	}
	s := &o.slots[i]
	o.em.Fail(s.held, s.trackers, err)
	o.held -= s.held
	s.held = 0
	clear(s.trackers)
	s.trackers = s.trackers[:0]
	if o.c.win.kind == session {
		o.unlinkSession(i)
	} else {
		delete(o.index, wkey[K]{s.key, s.start})
	}
	o.release(i)
	return nil
}

// publish makes the gauges readable from other goroutines.
func (o *op[T, K, A, V]) publish() {
	o.pub.keys.Store(o.open)
	o.pub.bytes.Store(o.bytes)
	o.pub.held.Store(o.held)
	o.pub.late.Store(o.late)
}

// Next implements engine.Operator.
func (o *op[T, K, A, V]) Next() (int64, bool) {
	next, ok := int64(0), false
	if len(o.early) > 0 {
		next, ok = o.early[0].at, true
	}
	if o.c.event == nil && len(o.due) > 0 && (!ok || o.due[0].at < next) {
		next, ok = o.due[0].at, true
	}
	return next, ok
}

// Stats implements engine.Operator.
func (o *op[T, K, A, V]) Stats() engine.StateStats {
	return engine.StateStats{Keys: o.pub.keys.Load(), Bytes: o.pub.bytes.Load(), Held: o.pub.held.Load(), Late: o.pub.late.Load()}
}

// Layout implements engine.Snapshotter.
func (o *op[T, K, A, V]) Layout() string { return o.c.layout }

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func sat(a, b int64) int64 {
	s := a + b
	if b > 0 && s < a {
		return 1<<63 - 1
	}
	return s
}
