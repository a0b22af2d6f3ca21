package engine

import "sync/atomic"

// Tracker counts the batches that still hold rows derived from one unit of
// source input. Its done function runs at most once, when the count drops to
// zero, unless the tracker was abandoned first. The zero value is not
// usable; create trackers with [NewTracker].
type Tracker struct {
	refs      atomic.Int64
	abandoned atomic.Bool
	done      func()
	// epoch is the number of the last checkpoint barrier its source had
	// sent when the last of its rows was taken (see Batcher.Inject).
	epoch  uint64
	unheld bool // see NewUnheldTracker

	// Trace, if not nil, is the trace context of the input (what a
	// pipeline's tracer returned for it): the span that the spans of the
	// batches holding rows derived from the input link to. It is set
	// before the tracker is attached to any batch and only read after.
	Trace any
}

// Epoch returns the number of the last checkpoint barrier the source had
// sent before the tracked rows were all taken: the rows are covered by
// checkpoint Epoch()+1. It may be read from the done function.
func (t *Tracker) Epoch() uint64 { return t.epoch }

// SetEpoch records the epoch of the tracked rows; call it before the
// caller's reference is released.
func (t *Tracker) SetEpoch(e uint64) { t.epoch = e }

// NewTracker returns a tracker holding one reference, owned by the caller,
// that calls done when the last reference is released. done may be nil.
func NewTracker(done func()) *Tracker {
	t := &Tracker{done: done}
	t.refs.Store(1)
	return t
}

// Retain adds n references.
func (t *Tracker) Retain(n int) {
	t.refs.Add(int64(n))
}

// Release drops one reference and runs done when none are left and the
// tracker was not abandoned. Releasing more references than were taken
// panics.
func (t *Tracker) Release() {
	switch n := t.refs.Add(-1); {
	case n == 0:
		if t.done != nil && !t.abandoned.Load() {
			t.done()
		}
	case n < 0:
		panic("row: Tracker released more times than retained")
	}
}

// Abandon makes sure done never runs: the input the tracker stands for was
// not wholly accepted, so it must not be acknowledged. References are still
// released as usual.
func (t *Tracker) Abandon() { t.abandoned.Store(true) }

// Pending reports the number of references still held.
func (t *Tracker) Pending() int64 {
	return t.refs.Load()
}
