package window

import (
	"context"
	"fmt"
	"reflect"
	"time"
	"unsafe"

	"github.com/kisflow/kisflow/internal/bridge"
	"github.com/kisflow/kisflow/internal/engine"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// ErrStateFull is the cause when a row needs a new window and the node
// holds MaxWindows windows (or MaxBytes): the row gets the stage's error
// policy, by default failing the run.
var ErrStateFull = engine.ErrStateFull

// ErrLayout is the cause when windows are restored from a snapshot of
// another layout (other windows, lateness, types or number of workers).
var ErrLayout = engine.ErrLayout

// Windows says how rows are grouped into windows: Tumbling, Sliding or
// Session.
type Windows struct {
	kind              kind
	size, slide, gap  int64
	sizeD, slideD, gD time.Duration
}

type kind int

const (
	tumbling kind = iota + 1
	sliding
	session
)

// Tumbling returns windows of the given size that do not overlap:
// [0, size), [size, 2*size), ... (Unix time). It panics if size <= 0.
func Tumbling(size time.Duration) Windows {
	if size <= 0 {
		panic("window: Tumbling: size must be positive")
	}
	return Windows{kind: tumbling, size: int64(size), slide: int64(size), sizeD: size, slideD: size}
}

// Sliding returns windows of the given size starting every slide: a row
// falls into size/slide windows (rounded up). It panics unless
// 0 < slide <= size.
func Sliding(size, slide time.Duration) Windows {
	if slide <= 0 || slide > size {
		panic("window: Sliding: need 0 < slide <= size")
	}
	return Windows{kind: sliding, size: int64(size), slide: int64(slide), sizeD: size, slideD: slide}
}

// Session returns windows per key that close after gap without rows: a
// row at t opens [t, t+gap) and sessions that overlap or touch merge.
// It panics if gap <= 0.
func Session(gap time.Duration) Windows {
	if gap <= 0 {
		panic("window: Session: gap must be positive")
	}
	return Windows{kind: session, gap: int64(gap), gD: gap}
}

// String describes the windows, as in a layout identifier.
func (w Windows) String() string {
	switch w.kind {
	case tumbling:
		return fmt.Sprintf("tumbling(%v)", w.sizeD)
	case sliding:
		return fmt.Sprintf("sliding(%v,%v)", w.sizeD, w.slideD)
	case session:
		return fmt.Sprintf("session(%v)", w.gD)
	}
	return "windows(?)"
}

// Firing says why a result was emitted.
type Firing uint8

// Firings.
const (
	// Early is a result before the window's end: EarlyCount or EarlyEvery.
	Early Firing = iota + 1
	// OnTime is the result when the watermark (or, in processing time, the
	// clock) passes the window's end.
	OnTime
	// Late is an updated result: a row within the allowed lateness came
	// after the on-time result.
	Late
)

// String returns the firing's name.
func (f Firing) String() string {
	switch f {
	case Early:
		return "early"
	case OnTime:
		return "on-time"
	case Late:
		return "late"
	}
	return "Firing(?)"
}

// Result is one firing of one window: its key, its bounds [Start, End)
// (UTC), the number of rows in it, and the value computed over them.
type Result[K comparable, V any] struct {
	Key        K
	Start, End time.Time
	Count      int64
	Value      V
	Firing     Firing
}

// Window is what a Process function is told about the window it gets.
type Window[K comparable] struct {
	Key        K
	Start, End time.Time
	Firing     Firing
}

// Agg is an incremental aggregation: the window keeps one accumulator,
// starting at Init, and Add folds every row into it. Merge combines two
// accumulators; session windows need it (sessions merge).
type Agg[T, A any] struct {
	Init  A
	Add   func(acc A, row T) A
	Merge func(a, b A) A
}

// Global is a key function that puts every row under one key: windows
// over the whole stream (on one worker).
func Global[T any](T) struct{} { return struct{}{} }

// Option configures a window operator.
type Option func(*options)

type options struct {
	event      any // func(T) time.Time
	bound      time.Duration
	idle       time.Duration
	sources    any // func(T) int
	lateness   time.Duration
	earlyCount int64
	earlyEvery time.Duration
	workers    int
	maxWindows int
	maxBytes   int64
	stage      []stage.Option
	now        func() int64
}

// DefaultMaxWindows is how many windows a window operator holds at most
// (over all its workers) unless MaxWindows says otherwise.
const DefaultMaxWindows = 1 << 20

// EventTime makes windows follow event time: fn gives each row's time, and
// the watermark is the highest time seen less bound (the out-of-orderness
// allowed). Without it windows follow processing time: a row belongs to
// the time it arrives, and windows fire on the clock. fn must take the
// operator's row type (checked when the operator is built).
func EventTime[T any](fn func(T) time.Time, bound time.Duration) Option {
	if fn == nil || bound < 0 {
		panic("window: EventTime: nil function or negative bound")
	}
	return func(o *options) { o.event, o.bound = fn, bound }
}

// Idle makes a source (see Sources) that sent nothing for d of processing
// time stop holding the watermark back; once every source is idle, event
// time follows the clock from the highest time seen, so windows still
// close on a quiet stream. It panics if d <= 0.
func Idle(d time.Duration) Option {
	if d <= 0 {
		panic("window: Idle: duration must be positive")
	}
	return func(o *options) { o.idle = d }
}

// Sources names each row's source (a partition of the input): the
// watermark is the minimum of the sources' watermarks, each the highest
// time seen from it less the bound. A source not seen yet does not hold
// it back.
func Sources[T any](fn func(T) int) Option {
	if fn == nil {
		panic("window: Sources: nil function")
	}
	return func(o *options) { o.sources = fn }
}

// Lateness keeps each event-time window open for d after the watermark
// passed its end: a row within it updates the window and the update is
// emitted (Firing Late); later rows go to the late stream.
func Lateness(d time.Duration) Option {
	if d < 0 {
		panic("window: Lateness: negative duration")
	}
	return func(o *options) { o.lateness = d }
}

// EarlyCount fires a window early every n rows added to it before its end.
func EarlyCount(n int) Option {
	if n < 1 {
		panic("window: EarlyCount: n must be at least 1")
	}
	return func(o *options) { o.earlyCount = int64(n) }
}

// EarlyEvery fires a window early at most every d of processing time while
// rows come into it before its end.
func EarlyEvery(d time.Duration) Option {
	if d <= 0 {
		panic("window: EarlyEvery: duration must be positive")
	}
	return func(o *options) { o.earlyEvery = d }
}

// Workers spreads the keys over n workers (default 1): all rows of one key
// go to one worker, in order.
func Workers(n int) Option {
	if n < 1 {
		panic("window: Workers: n must be at least 1")
	}
	return func(o *options) { o.workers = n }
}

// MaxWindows bounds the windows the operator holds (default
// DefaultMaxWindows), split evenly between its workers: a row that needs a
// new window beyond it fails with ErrStateFull and gets the stage's error
// policy (Stage(stage.OnError(...))).
func MaxWindows(n int) Option {
	if n < 1 {
		panic("window: MaxWindows: n must be at least 1")
	}
	return func(o *options) { o.maxWindows = n }
}

// MaxBytes bounds the estimated size of the windows (see
// pipeline.NodeStats.StateBytes), as MaxWindows bounds their number.
func MaxBytes(n int64) Option {
	if n < 1 {
		panic("window: MaxBytes: n must be at least 1")
	}
	return func(o *options) { o.maxBytes = n }
}

// Stage passes stage options to the operator: OnError, Retry, Timeout,
// Buffer. Concurrency is Workers.
func Stage(opts ...stage.Option) Option {
	return func(o *options) { o.stage = append(o.stage, opts...) }
}

// Output is a window operator's two streams: its results, and the rows
// that came after their window's allowed lateness.
type Output[K comparable, T, V any] struct {
	results pipeline.Stream[Result[K, V]]
	late    pipeline.Stream[T]
	node    *engine.Keyed[T, Result[K, V]]
}

// Results returns the stream of results. It must be consumed.
func (o *Output[K, T, V]) Results() pipeline.Stream[Result[K, V]] { return o.results }

// Late returns the stream of rows that came after their window's allowed
// lateness. It may stay unconsumed: late rows then count Filtered. Either
// way they count in pipeline.NodeStats.Late.
func (o *Output[K, T, V]) Late() pipeline.Stream[T] { return o.late }

// Fold adds a window operator named name after s: rows are grouped by key
// and into windows, each window keeps one accumulator folded with agg,
// and each firing emits a Result whose Value is the accumulator.
func Fold[T any, K comparable, A any](s pipeline.Stream[T], name string, key func(T) K, w Windows, agg Agg[T, A], opts ...Option) *Output[K, T, A] {
	if agg.Add == nil {
		panic("window: Fold " + name + ": nil Add")
	}
	if w.kind == session && agg.Merge == nil {
		panic("window: Fold " + name + ": session windows need Agg.Merge")
	}
	c := foldCore[T, K](agg)
	return build(s, name, key, w, c, opts)
}

// foldCore returns the core of a Fold with agg.
func foldCore[T any, K comparable, A any](agg Agg[T, A]) *core[T, K, A, A] {
	init := agg.Init
	return &core[T, K, A, A]{
		add: agg.Add, merge: agg.Merge,
		reset: func(A) A { return init },
		clone: func(a A) A { return a },
		fire: func(_ context.Context, emit func(Result[K, A]), r Result[K, A], acc A) error {
			r.Value = acc
			emit(r)
			return nil
		},
		size: func(A) int64 { return 0 },
	}
}

// Reduce is Fold whose accumulator is a row: the first row of a window
// starts it and fn combines it with each next row (and, for sessions,
// two sessions' values).
func Reduce[T any, K comparable](s pipeline.Stream[T], name string, key func(T) K, w Windows, fn func(a, b T) T, opts ...Option) *Output[K, T, T] {
	if fn == nil {
		panic("window: Reduce " + name + ": nil function")
	}
	type acc = reduceAcc[T]
	var zero acc
	c := &core[T, K, acc, T]{
		add: func(a acc, v T) acc {
			if !a.OK {
				return acc{V: v, OK: true}
			}
			return acc{V: fn(a.V, v), OK: true}
		},
		merge: func(a, b acc) acc {
			switch {
			case !a.OK:
				return b
			case !b.OK:
				return a
			}
			return acc{V: fn(a.V, b.V), OK: true}
		},
		reset: func(acc) acc { return zero },
		clone: func(a acc) acc { return a },
		fire: func(_ context.Context, emit func(Result[K, T]), r Result[K, T], a acc) error {
			r.Value = a.V
			emit(r)
			return nil
		},
		size: func(acc) int64 { return 0 },
	}
	return build(s, name, key, w, c, opts)
}

// reduceAcc is Reduce's accumulator: the value so far, if any.
type reduceAcc[T any] struct {
	V  T
	OK bool
}

// Process adds a window operator named name after s that keeps every row
// of each window and, at each firing, calls fn with the window and its
// rows, in arrival order; fn emits any number of values, each sent on as
// a Result of the window. fn must not keep rows after it returns. An
// error (or panic) fails the run under FailFlow, and otherwise counts the
// window's rows Failed.
func Process[T any, K comparable, V any](s pipeline.Stream[T], name string, key func(T) K, w Windows, fn func(ctx context.Context, win Window[K], rows []T, emit func(V)) error, opts ...Option) *Output[K, T, V] {
	if fn == nil {
		panic("window: Process " + name + ": nil function")
	}
	var rowSize = int64(unsafe.Sizeof(*new(T)))
	c := &core[T, K, []T, V]{
		add:   func(a []T, v T) []T { return append(a, v) },
		merge: func(a, b []T) []T { return append(a, b...) },
		reset: func(a []T) []T { clear(a); return a[:0] },
		clone: func(a []T) []T { return append([]T(nil), a...) },
		size:  func(a []T) int64 { return int64(len(a)) * rowSize },
	}
	c.fire = func(ctx context.Context, emit func(Result[K, V]), r Result[K, V], rows []T) error {
		return fn(ctx, Window[K]{Key: r.Key, Start: r.Start, End: r.End, Firing: r.Firing}, rows, func(v V) {
			r.Value = v
			emit(r)
		})
	}
	return build(s, name, key, w, c, opts)
}

// configure checks the options and sets c up from them.
func configure[T any, K comparable, A, V any](name string, key func(T) K, w Windows, c *core[T, K, A, V], opts []Option) (options, *engine.Watermarks[T]) {
	if key == nil {
		panic("window: " + name + ": nil key function")
	}
	if w.kind == 0 {
		panic("window: " + name + ": zero Windows (use Tumbling, Sliding or Session)")
	}
	o := options{workers: 1, maxWindows: DefaultMaxWindows}
	for _, opt := range opts {
		opt(&o)
	}
	c.name, c.win, c.key = name, w, key
	c.lateness = int64(o.lateness)
	c.earlyCount, c.earlyEvery = o.earlyCount, int64(o.earlyEvery)
	c.maxWindows = max(1, o.maxWindows/o.workers)
	if o.maxBytes > 0 {
		c.maxBytes = max(1, o.maxBytes/int64(o.workers))
	}
	c.entryBytes = int64(unsafe.Sizeof(slot[K, A]{})) + 2*int64(unsafe.Sizeof(timer{}))
	var marks *engine.Watermarks[T]
	if o.event != nil {
		fn, ok := o.event.(func(T) time.Time)
		if !ok {
			panic(fmt.Sprintf("window: %s: EventTime function %T does not take the rows (%v)", name, o.event, reflect.TypeFor[T]()))
		}
		c.event = func(v T) int64 { return fn(v).UnixNano() }
		marks = &engine.Watermarks[T]{Time: c.event, Bound: int64(o.bound), Idle: int64(o.idle)}
		if o.sources != nil {
			src, ok := o.sources.(func(T) int)
			if !ok {
				panic(fmt.Sprintf("window: %s: Sources function %T does not take the rows (%v)", name, o.sources, reflect.TypeFor[T]()))
			}
			marks.Source = src
		}
	} else if o.sources != nil || o.idle > 0 || o.lateness > 0 {
		panic("window: " + name + ": Sources, Idle and Lateness need EventTime")
	}
	c.layout = fmt.Sprintf("window/v1 %s lateness=%v event=%t key=%v acc=%v workers=%d",
		w, o.lateness, c.event != nil, reflect.TypeFor[K](), reflect.TypeFor[A](), o.workers)
	return o, marks
}

// build adds the operator's node to s's pipeline.
func build[T any, K comparable, A, V any](s pipeline.Stream[T], name string, key func(T) K, w Windows, c *core[T, K, A, V], opts []Option) *Output[K, T, V] {
	o, marks := configure(name, key, w, c, opts)
	keyHash, stable := engine.KeyHash[K]()
	hash := func(v T) uint64 { return keyHash(key(v)) }
	if o.workers == 1 {
		hash = func(T) uint64 { return 0 }
	}
	node := engine.NewKeyed(name, o.workers, hash, marks, func(int) engine.Operator[T, Result[K, V]] {
		return newOp(c)
	}, o.stage...)
	node.StableHash = stable
	if o.now != nil {
		node.Now = o.now
	}
	c.now = node.Now
	res, late := bridge.Keyed(s, name, node.Goroutines(), node.Stage().ErrorPolicy() == stage.DeadLetter, pipeline.Stream[Result[K, V]]{}, true,
		func(ctx context.Context, env *engine.Env, in, out, late any) error {
			var l *engine.Edge[T]
			if late != nil {
				l = late.(*engine.Edge[T])
			}
			return engine.StartKeyed(ctx, node, env, in.(*engine.Edge[T]), out.(*engine.Edge[Result[K, V]]), l)
		}, node.Stats, node.Checkpointed())
	return &Output[K, T, V]{results: res.(pipeline.Stream[Result[K, V]]), late: late.(pipeline.Stream[T]), node: node}
}
