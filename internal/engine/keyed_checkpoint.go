package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// Checkpoints of a keyed node.
//
// Barrier k goes through a keyed node like through a stage with several
// workers: the dispatcher (or the one worker reading the input) queues
// one token of it per worker, after the batches before it. Each worker
// that takes a token captures its operator's state; the last one to
// take one has every worker waiting, with every batch before the
// barrier processed and its results sent, and lets the barrier through:
// Env.Barrier runs (the pipeline captures the node's state, the
// combination of the workers' captures), then the barrier goes on to
// the out edge and to the late edge.
//
// With checkpoints (Env.Barrier set), a row absorbed into state is
// covered by the checkpoint that captures that state: the operator holds
// no tracker for it (Emitter.Hold holds none), so its input's
// acknowledgement waits for that checkpoint, not for the window to fire.
//
// The node's part also holds its input clock (the watermark and each
// source's highest event time and age, see clock.snapshot), captured by
// the goroutine that reads the input as the barrier reaches it, so that
// it covers exactly the rows before the barrier. Restored, it makes the
// watermark of several sources go on from where it stood, rather than
// follow the first source to send rows again.
//
// The part is the number of workers, each worker's snapshot (length
// first), then, when the node has a watermark, the clock: the tag
// "clk1", a byte (1: per source), the watermark, the highest event time,
// the age of the last row, the number of sources and for each its id,
// highest event time and age (varints). The clock is optional: a part
// without it (written before it existed) restores with the clock started
// afresh, and a reader that predates it ignores it, so it does not
// change the layout identifier.

// keyedRound is barrier k going through a keyed node's workers.
type keyedRound struct {
	k       uint64
	n       int32
	arrived atomic.Int32
	all     chan struct{} // closed once the barrier has gone through
	clock   *clockSnap    // the input clock as the barrier reached the node
}

// Checkpointed returns the node's state as one part of a checkpoint:
// the workers' snapshots, one per worker. Its SnapshotState is called by
// Env.Barrier while a barrier passes the node, or with checkpoint 0 once
// the node's goroutines have all ended; its RestoreState, before the run,
// feeds each worker its part.
func (k *Keyed[In, Out]) Checkpointed() Snapshotter { return &keyedState[In, Out]{k: k} }

// keyedState is a keyed node's Snapshotter.
type keyedState[In, Out any] struct{ k *Keyed[In, Out] }

// capture records worker i's snapshot for round r, and the round's
// input clock.
func (k *Keyed[In, Out]) capture(r *keyedRound, i int) error {
	write, err := k.ops[i].SnapshotState(r.k)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.captured == nil || k.capturedAt != r.k {
		k.captured, k.capturedAt = make([]func(io.Writer) error, k.workers), r.k
	}
	k.captured[i], k.capturedClock = write, r.clock
	return nil
}

func (s *keyedState[In, Out]) SnapshotState(cp uint64) (func(io.Writer) error, error) {
	k := s.k
	k.mu.Lock()
	var writes []func(io.Writer) error
	var clk *clockSnap
	if cp != 0 {
		if k.capturedAt != cp || k.captured == nil {
			k.mu.Unlock()
			return nil, fmt.Errorf("keyed %s: no capture for checkpoint %d", k.st.name, cp)
		}
		writes, k.captured = k.captured, nil
		clk, k.capturedClock = k.capturedClock, nil
	} else {
		clk = k.finalClock
	}
	ops := k.ops
	k.mu.Unlock()
	if cp == 0 {
		// Every goroutine of the node has ended: the operators are read
		// here by no one else.
		if ops == nil {
			return nil, fmt.Errorf("keyed %s: not started", k.st.name)
		}
		writes = make([]func(io.Writer) error, len(ops))
		for i, op := range ops {
			w, err := op.SnapshotState(0)
			if err != nil {
				return nil, err
			}
			writes[i] = w
		}
	}
	for i, w := range writes {
		if w == nil {
			return nil, fmt.Errorf("keyed %s: worker %d missed checkpoint %d", k.st.name, i, cp)
		}
	}
	return func(w io.Writer) error {
		var hdr [binary.MaxVarintLen64]byte
		if _, err := w.Write(hdr[:binary.PutUvarint(hdr[:], uint64(len(writes)))]); err != nil {
			return err
		}
		for _, write := range writes {
			var buf bytes.Buffer
			if err := write(&buf); err != nil {
				return err
			}
			if _, err := w.Write(hdr[:binary.PutUvarint(hdr[:], uint64(buf.Len()))]); err != nil {
				return err
			}
			if _, err := w.Write(buf.Bytes()); err != nil {
				return err
			}
		}
		if clk == nil {
			return nil
		}
		_, err := w.Write(clk.append(nil))
		return err
	}, nil
}

// clockTag begins the clock in a keyed node's part.
const clockTag = "clk1"

// append appends the encoding of s to b.
func (s *clockSnap) append(b []byte) []byte {
	b = append(b, clockTag...)
	if s.sources {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendVarint(b, s.wm)
	b = binary.AppendVarint(b, s.maxAny)
	b = binary.AppendVarint(b, s.ageAny)
	b = binary.AppendUvarint(b, uint64(len(s.srcs)))
	for _, src := range s.srcs {
		b = binary.AppendVarint(b, src.id)
		b = binary.AppendVarint(b, src.max)
		b = binary.AppendVarint(b, src.age)
	}
	return b
}

// parseClock decodes a clock written by append; it must fill data.
func parseClock(data []byte) (*clockSnap, error) {
	bad := errors.Join(ErrLayout, errors.New("bad input clock in keyed node snapshot"))
	if len(data) < len(clockTag)+1 || string(data[:len(clockTag)]) != clockTag || data[len(clockTag)] > 1 {
		return nil, bad
	}
	s := &clockSnap{sources: data[len(clockTag)] == 1}
	data = data[len(clockTag)+1:]
	varint := func() int64 {
		v, l := binary.Varint(data)
		if l <= 0 {
			data = nil
			return 0
		}
		data = data[l:]
		return v
	}
	ok := func() bool { return data != nil }
	s.wm, s.maxAny, s.ageAny = varint(), varint(), varint()
	if !ok() {
		return nil, bad
	}
	n, l := binary.Uvarint(data)
	if l <= 0 || n > uint64(len(data)) || (!s.sources && n != 1) {
		return nil, bad
	}
	data = data[l:]
	s.srcs = make([]srcSnap, 0, n)
	for range n {
		src := srcSnap{id: varint(), max: varint(), age: varint()}
		if !ok() {
			return nil, bad
		}
		s.srcs = append(s.srcs, src)
	}
	if len(data) != 0 {
		return nil, bad
	}
	return s, nil
}

func (s *keyedState[In, Out]) RestoreState(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	n, l := binary.Uvarint(data)
	if l <= 0 || n > uint64(len(data)) {
		return errors.Join(ErrLayout, errors.New("bad keyed node snapshot"))
	}
	data = data[l:]
	states := make([][]byte, 0, n)
	for range n {
		m, l := binary.Uvarint(data)
		if l <= 0 || m > uint64(len(data)-l) {
			return errors.Join(ErrLayout, errors.New("bad keyed node snapshot"))
		}
		states = append(states, data[l:l+int(m)])
		data = data[l+int(m):]
	}
	var clk *clockSnap
	if len(data) > 0 {
		if clk, err = parseClock(data); err != nil {
			return err
		}
	}
	if err := s.k.Restore(states); err != nil {
		return err
	}
	s.k.mu.Lock()
	s.k.restoreClock = clk
	s.k.mu.Unlock()
	return nil
}

func (s *keyedState[In, Out]) Layout() string {
	k := s.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.layout == "" {
		k.layout = fmt.Sprintf("keyed/1 workers=%d %s", k.workers, k.newOp(0).Layout())
	}
	return k.layout
}

// Restorable reports why a checkpoint of the node could not be restored
// in another process, or nil: with several workers, the keys must be
// routed to the same worker in every process (Keyed.StableHash).
func (s *keyedState[In, Out]) Restorable() error {
	if s.k.workers > 1 && !s.k.StableHash {
		return errors.New("keys of this type are not routed to the same worker in every process: checkpointing several workers needs string, integer, boolean or float keys")
	}
	return nil
}

// passKeyed is worker kw taking its token of barrier round r: it
// captures its operator's state; the last worker to take one lets the
// barrier through, the others wait for it.
func (kw *keyedWorker[In, Out]) passKeyed(ctx context.Context, r *keyedRound) error {
	if err := kw.k.capture(r, kw.i); err != nil {
		return &Error{Flow: kw.w.env.Flow, Stage: kw.k.st.name, Err: fmt.Errorf("snapshot for checkpoint %d: %w", r.k, err)}
	}
	if r.arrived.Add(1) < r.n {
		select {
		case <-r.all:
			return nil
		case <-ctx.Done():
			return errEnding
		}
	}
	defer close(r.all)
	if err := kw.w.arrive(ctx, r.k); err != nil {
		return err
	}
	return kw.forwardBarrier(ctx, r.k)
}

// forwardBarrier sends barrier k to the out edge and the late edge,
// arriving at both before waiting at either (they may meet downstream).
func (kw *keyedWorker[In, Out]) forwardBarrier(ctx context.Context, k uint64) error {
	var stop chan struct{} // never closed: ctx ends the waits
	wait1, err := kw.out.arrive(ctx, stop, NewBarrier[Out](k))
	var wait2 func(context.Context, <-chan struct{}) error
	if err == nil && kw.late != nil {
		wait2, err = kw.late.arrive(ctx, stop, NewBarrier[In](k))
	}
	for _, wait := range []func(context.Context, <-chan struct{}) error{wait1, wait2} {
		if err == nil && wait != nil {
			err = wait(ctx, stop)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return errEnding
		}
		return &Error{Flow: kw.w.env.Flow, Stage: kw.k.st.name, Err: err}
	}
	return nil
}
