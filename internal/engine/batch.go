package engine

import (
	"reflect"
	"sync"
)

// Batch is a slice of rows of one type with the trackers of the input they
// derive from. See the package doc for who owns a batch and when.
type Batch[T any] struct {
	// Rows are the rows of the batch. Stages read and rewrite it in place.
	Rows []T

	trackers []*Tracker
	hops     int // feedback hops the rows have taken (see Lineage)
	// barrier, when not zero, makes the batch a checkpoint barrier: it
	// holds no rows and travels with the batches (see barrier.go).
	barrier uint64
}

// Lineage is what rows made from a batch inherit: the trackers of the
// input they derive from, and how many times they went round a feedback
// loop. It is valid while the batch it came from is being processed.
type Lineage struct {
	trackers []*Tracker
	hops     int
}

// Hops reports how many feedback hops the rows have taken.
func (l Lineage) Hops() int { return l.hops }

// Traces appends to dst the trace contexts (Tracker.Trace) of the
// trackers that have one, and returns the extended slice.
func (l Lineage) Traces(dst []any) []any {
	for _, t := range l.trackers {
		if t.Trace != nil {
			dst = append(dst, t.Trace)
		}
	}
	return dst
}

// Lineage returns the batch's lineage.
func (b *Batch[T]) Lineage() Lineage { return Lineage{b.trackers, b.hops} }

// Inherit makes b's rows derive from l: it attaches every tracker of l,
// retaining each once, and sets b's hop count to hops.
func (b *Batch[T]) Inherit(l Lineage, hops int) {
	for _, t := range l.trackers {
		t.Retain(1)
		b.trackers = append(b.trackers, t)
	}
	b.hops = hops
}

// Len returns the number of rows in the batch.
func (b *Batch[T]) Len() int { return len(b.Rows) }

// Track attaches t to the batch. The batch takes over one reference of t,
// released when the batch is put back.
func (b *Batch[T]) Track(t *Tracker) {
	b.trackers = append(b.trackers, t)
}

// Tracked reports whether the batch carries any tracker.
func (b *Batch[T]) Tracked() bool { return len(b.trackers) > 0 }

// Release releases every tracker the batch holds and forgets them. Put calls
// it; call it directly only for a batch that will not be put back.
func (b *Batch[T]) Release() {
	for i, t := range b.trackers {
		t.Release()
		b.trackers[i] = nil
	}
	b.trackers = b.trackers[:0]
}

// MoveTrackers moves every tracker of from onto to, leaving from with none,
// and gives to the hop count of from. The types of the two batches may
// differ: a stage moves the trackers of its input batch onto the output
// batch it produced.
func MoveTrackers[A, B any](to *Batch[B], from *Batch[A]) {
	to.hops = from.hops
	if len(from.trackers) == 0 {
		return
	}
	to.trackers = append(to.trackers, from.trackers...)
	clear(from.trackers)
	from.trackers = from.trackers[:0]
}

// ShareTrackers attaches every tracker of from to to as well, retaining each
// once, for a batch that holds more rows derived from the same input.
func ShareTrackers[A, B any](to *Batch[B], from *Batch[A]) {
	to.hops = from.hops
	for _, t := range from.trackers {
		t.Retain(1)
		to.trackers = append(to.trackers, t)
	}
}

// maxPooledCap bounds the capacity of a pooled batch, so that one huge
// expansion does not pin its memory in the pool for ever.
const maxPooledCap = 1 << 14

// Pool recycles batches of one row type. Use [PoolOf] to get the shared pool
// of a type. A Pool is safe for concurrent use.
type Pool[T any] struct {
	p sync.Pool
	// pointers says whether T holds pointers: only then must a recycled
	// batch clear its rows, so that the GC can free what they point to.
	pointers bool
}

var pools sync.Map // reflect.Type -> *Pool[T]

// PoolOf returns the process-wide pool for batches of T. It is meant to be
// called when a pipeline is built, not per batch.
func PoolOf[T any]() *Pool[T] {
	key := reflect.TypeFor[T]()
	if p, ok := pools.Load(key); ok {
		return p.(*Pool[T])
	}
	p, _ := pools.LoadOrStore(key, &Pool[T]{pointers: hasPointers(key)})
	return p.(*Pool[T])
}

// hasPointers reports whether values of t hold any pointer.
func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	}
	return true
}

// Get returns an empty batch whose Rows have room for at least size rows.
func (p *Pool[T]) Get(size int) *Batch[T] {
	if b, ok := p.p.Get().(*Batch[T]); ok {
		if cap(b.Rows) < size {
			b.Rows = make([]T, 0, size)
		}
		return b
	}
	return &Batch[T]{Rows: make([]T, 0, size)}
}

// Put marks every row of b as handled: it releases b's trackers, then
// recycles b. The caller must not touch b afterwards.
func (p *Pool[T]) Put(b *Batch[T]) {
	b.Release()
	b.hops = 0
	b.barrier = 0
	if cap(b.Rows) > maxPooledCap {
		return
	}
	if p.pointers {
		clear(b.Rows) // drop references held by the rows so the GC can free them
	}
	b.Rows = b.Rows[:0]
	p.p.Put(b)
}
