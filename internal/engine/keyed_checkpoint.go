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

// keyedRound is barrier k going through a keyed node's workers.
type keyedRound struct {
	k       uint64
	n       int32
	arrived atomic.Int32
	all     chan struct{} // closed once the barrier has gone through
}

// Checkpointed returns the node's state as one part of a checkpoint:
// the workers' snapshots, one per worker. Its SnapshotState is called by
// Env.Barrier while a barrier passes the node, or with checkpoint 0 once
// the node's goroutines have all ended; its RestoreState, before the run,
// feeds each worker its part.
func (k *Keyed[In, Out]) Checkpointed() Snapshotter { return &keyedState[In, Out]{k: k} }

// keyedState is a keyed node's Snapshotter.
type keyedState[In, Out any] struct{ k *Keyed[In, Out] }

// capture records worker i's snapshot for checkpoint cp.
func (k *Keyed[In, Out]) capture(cp uint64, i int) error {
	write, err := k.ops[i].SnapshotState(cp)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.captured == nil || k.capturedAt != cp {
		k.captured, k.capturedAt = make([]func(io.Writer) error, k.workers), cp
	}
	k.captured[i] = write
	return nil
}

func (s *keyedState[In, Out]) SnapshotState(cp uint64) (func(io.Writer) error, error) {
	k := s.k
	k.mu.Lock()
	var writes []func(io.Writer) error
	if cp != 0 {
		if k.capturedAt != cp || k.captured == nil {
			k.mu.Unlock()
			return nil, fmt.Errorf("keyed %s: no capture for checkpoint %d", k.st.name, cp)
		}
		writes, k.captured = k.captured, nil
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
		return nil
	}, nil
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
	return s.k.Restore(states)
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
	if err := kw.k.capture(r.k, kw.i); err != nil {
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
