package keyed

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/kisflow/kisflow/internal/engine"
)

// core is what every worker of one keyed operator shares.
type core[In any, K comparable, Out any] struct {
	name     string
	key      func(In) K
	event    func(In) int64
	fn       Func[K, In, Out]
	states   []State
	maxKeys  int64
	maxBytes int64
	layout   string
	now      func() int64
}

type timerKey[K comparable] struct {
	key    K
	at     int64
	domain Domain
}

// clocks are a worker's watermark and timers: a set (a timer set twice is
// set once) and a heap per domain.
type clocks[K comparable] struct {
	wm       int64
	timerSet map[timerKey[K]]struct{}
	event    timerHeap[K]
	proc     timerHeap[K]
}

func (c *clocks[K]) setTimer(k K, at int64, d Domain) {
	tk := timerKey[K]{k, at, d}
	if _, ok := c.timerSet[tk]; ok {
		return
	}
	c.timerSet[tk] = struct{}{}
	if d == EventTime {
		c.event.push(tk)
	} else {
		c.proc.push(tk)
	}
}

// op is one worker of a keyed operator: an engine.Operator.
type op[In any, K comparable, Out any] struct {
	c   *core[In, K, Out]
	sc  scope[K]
	clk clocks[K]
	cx  Context[K, Out]
	em  *engine.Emitter[In, Out]
	pub struct{ keys, bytes, expired atomic.Int64 }
}

func newOp[In any, K comparable, Out any](c *core[In, K, Out]) *op[In, K, Out] {
	o := &op[In, K, Out]{c: c}
	o.sc = scope[K]{name: c.name, byState: map[State]int{}, maxKeys: c.maxKeys, maxB: c.maxBytes}
	for i, st := range c.states {
		o.sc.tables = append(o.sc.tables, st.newTable().(tabler[K]))
		o.sc.byState[st] = i
	}
	o.clk = clocks[K]{wm: engine.NoWatermark, timerSet: map[timerKey[K]]struct{}{}}
	o.cx = Context[K, Out]{sc: &o.sc, op: &o.clk, emit: func(v Out) { o.em.Emit(v) }}
	return o
}

// Row implements engine.Operator.
func (o *op[In, K, Out]) Row(ctx context.Context, e *engine.Emitter[In, Out], v In, now int64) error {
	o.em = e
	o.sc.key, o.sc.now, o.sc.err = o.c.key(v), now, nil
	o.cx.ts = now
	if o.c.event != nil {
		o.cx.ts = o.c.event(v)
	}
	if err := o.c.fn.Row(ctx, &o.cx, v); err != nil {
		return err
	}
	return o.sc.err
}

// Advance implements engine.Operator: it fires the timers due and evicts
// the state whose time to live ended.
func (o *op[In, K, Out]) Advance(ctx context.Context, e *engine.Emitter[In, Out], wm, now int64) error {
	o.em = e
	o.sc.now = now
	if now == engine.EndOfInput {
		o.sc.now = o.c.now() // state does not all expire because the input ended
	}
	if o.c.event != nil {
		o.clk.wm = max(o.clk.wm, wm)
	}
	for _, h := range []*timerHeap[K]{&o.clk.proc, &o.clk.event} {
		due := now
		if h == &o.clk.event {
			due = o.clk.wm
			if o.c.event == nil {
				due = wm // without event time, event timers fire at the end of input
			}
		}
		for len(*h) > 0 && (*h)[0].at <= due {
			tk := h.pop()
			if _, ok := o.clk.timerSet[tk]; !ok {
				continue // deleted
			}
			delete(o.clk.timerSet, tk)
			if o.c.fn.Timer == nil {
				continue
			}
			o.sc.key, o.sc.err, o.cx.ts = tk.key, nil, tk.at
			err := o.c.fn.Timer(ctx, &o.cx, Timer{At: o.cx.Time(), Domain: tk.domain})
			if err == nil {
				err = o.sc.err
			}
			if err != nil {
				err = fmt.Errorf("keyed %s: timer of key %v: %w", o.c.name, tk.key, err)
				if e.Policy() == engine.FailFlow {
					return err
				}
				e.Fail(0, nil, err)
			}
		}
	}
	for _, t := range o.sc.tables {
		t.expire(&o.sc)
	}
	o.pub.keys.Store(o.sc.entries)
	o.pub.bytes.Store(o.sc.bytes)
	o.pub.expired.Store(o.sc.expired)
	return nil
}

// Next implements engine.Operator: the next processing-time timer or
// expiry.
func (o *op[In, K, Out]) Next() (int64, bool) {
	next, ok := int64(0), false
	if len(o.clk.proc) > 0 {
		next, ok = o.clk.proc[0].at, true
	}
	for _, t := range o.sc.tables {
		if at, tok := t.next(); tok && (!ok || at < next) {
			next, ok = at, true
		}
	}
	return next, ok
}

// Stats implements engine.Operator.
func (o *op[In, K, Out]) Stats() engine.StateStats {
	return engine.StateStats{Keys: o.pub.keys.Load(), Bytes: o.pub.bytes.Load(), Expired: o.pub.expired.Load()}
}

// Layout implements engine.Snapshotter.
func (o *op[In, K, Out]) Layout() string { return o.c.layout }

// A snapshot of a worker's state is a binary header (the magic "KFK1",
// the layout identifier, the watermark and the checkpoint) followed by a
// gob stream: each state's entries in declared order, then the timers.
// Keys and values are user types: gob encodes them (exported fields).

var snapMagic = [4]byte{'K', 'F', 'K', '1'}

type snapTimer[K comparable] struct {
	Key    K
	At     int64
	Domain Domain
}

// SnapshotState implements engine.Snapshotter: it copies every state's
// entries (lists and maps copied) and the timers.
func (o *op[In, K, Out]) SnapshotState(checkpoint uint64) (func(io.Writer) error, error) {
	tables := make([]any, len(o.sc.tables))
	for i, t := range o.sc.tables {
		tables[i] = t.snapshot()
	}
	timers := make([]snapTimer[K], 0, len(o.clk.timerSet))
	for tk := range o.clk.timerSet {
		timers = append(timers, snapTimer[K]{tk.key, tk.at, tk.domain})
	}
	wm, layout, name := o.clk.wm, o.c.layout, o.c.name
	return func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		bw.Write(snapMagic[:])
		var buf [binary.MaxVarintLen64]byte
		bw.Write(buf[:binary.PutUvarint(buf[:], uint64(len(layout)))])
		bw.WriteString(layout)
		bw.Write(buf[:binary.PutVarint(buf[:], wm)])
		bw.Write(buf[:binary.PutUvarint(buf[:], checkpoint)])
		enc := gob.NewEncoder(bw)
		for _, t := range tables {
			if err := enc.Encode(t); err != nil {
				return fmt.Errorf("keyed %s: snapshot: %w", name, err)
			}
		}
		if err := enc.Encode(timers); err != nil {
			return fmt.Errorf("keyed %s: snapshot: %w", name, err)
		}
		return bw.Flush()
	}, nil
}

// RestoreState implements engine.Snapshotter.
func (o *op[In, K, Out]) RestoreState(r io.Reader) error {
	br := bufio.NewReader(r)
	var magic [4]byte
	if _, err := io.ReadFull(br, magic[:]); err != nil || magic != snapMagic {
		return fmt.Errorf("keyed %s: restore: %w: not a keyed snapshot", o.c.name, ErrLayout)
	}
	n, err := binary.ReadUvarint(br)
	if err != nil || n > 1<<16 {
		return fmt.Errorf("keyed %s: restore: bad header: %w", o.c.name, errors.Join(ErrLayout, err))
	}
	layout := make([]byte, n)
	if _, err := io.ReadFull(br, layout); err != nil {
		return fmt.Errorf("keyed %s: restore: %w", o.c.name, err)
	}
	if string(layout) != o.c.layout {
		return fmt.Errorf("keyed %s: restore: %w: snapshot is %q, the operator is %q", o.c.name, ErrLayout, layout, o.c.layout)
	}
	wm, err := binary.ReadVarint(br)
	if err != nil {
		return fmt.Errorf("keyed %s: restore: %w", o.c.name, err)
	}
	if _, err := binary.ReadUvarint(br); err != nil {
		return fmt.Errorf("keyed %s: restore: %w", o.c.name, err)
	}
	fresh := newOp(o.c)
	fresh.clk.wm = wm
	dec := gob.NewDecoder(br)
	for _, t := range fresh.sc.tables {
		if err := t.restore(dec, &fresh.sc); err != nil {
			return fmt.Errorf("keyed %s: restore: state %s: %w", o.c.name, t.stateName(), err)
		}
	}
	var timers []snapTimer[K]
	if err := dec.Decode(&timers); err != nil {
		return fmt.Errorf("keyed %s: restore: timers: %w", o.c.name, err)
	}
	for _, t := range timers {
		fresh.clk.setTimer(t.Key, t.At, t.Domain)
	}
	o.c, o.sc, o.clk = fresh.c, fresh.sc, fresh.clk
	o.cx = Context[K, Out]{sc: &o.sc, op: &o.clk, emit: func(v Out) { o.em.Emit(v) }}
	o.pub.keys.Store(o.sc.entries)
	o.pub.bytes.Store(o.sc.bytes)
	return nil
}

// timerHeap is a min-heap of timers by time.
type timerHeap[K comparable] []timerKey[K]

func (h *timerHeap[K]) push(t timerKey[K]) {
	*h = append(*h, t)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if s[p].at <= s[i].at {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *timerHeap[K]) pop() timerKey[K] {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(s) && s[l].at < s[m].at {
			m = l
		}
		if r < len(s) && s[r].at < s[m].at {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}
