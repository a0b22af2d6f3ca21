package keyed

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/kisflow/kisflow/internal/bridge"
	"github.com/kisflow/kisflow/internal/engine"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// ErrStateFull is the cause when a row needs a new state entry and the
// operator's state is at its limit (MaxKeys, MaxBytes): the row gets the
// stage's error policy, by default failing the run.
var ErrStateFull = engine.ErrStateFull

// ErrLayout is the cause when state is restored from a snapshot of
// another layout (other states, types, windows or number of workers).
var ErrLayout = engine.ErrLayout

// Domain says which clock a timer follows.
type Domain uint8

// Timer domains.
const (
	// EventTime timers fire when the watermark reaches their time.
	EventTime Domain = iota + 1
	// ProcessingTime timers fire when the clock reaches their time.
	ProcessingTime
)

// Timer is a timer that fired, for the key of the Context it comes with.
type Timer struct {
	At     time.Time
	Domain Domain
}

// Func is a keyed process function: Row is called for every row with its
// key's Context, Timer (optional) for every timer that fires. Both emit
// any number of rows through the Context. An error from Row fails the row
// (retries, error policy); an error from Timer fails the run under
// FailFlow and is otherwise recorded (LastError) and passed over.
type Func[K comparable, In, Out any] struct {
	Row   func(ctx context.Context, c *Context[K, Out], row In) error
	Timer func(ctx context.Context, c *Context[K, Out], t Timer) error
}

// Context is what a keyed function gets with a row or a timer: the key,
// its state (through the state descriptors), timers, the clocks, and emit.
// It is valid only during the call.
type Context[K comparable, Out any] struct {
	sc   *scope[K]
	op   *clocks[K]
	emit func(Out)
	ts   int64
}

func (c *Context[K, Out]) scope() *scope[K] { return c.sc }

// Key returns the key being processed.
func (c *Context[K, Out]) Key() K { return c.sc.key }

// Emit sends v on.
func (c *Context[K, Out]) Emit(v Out) { c.emit(v) }

// Time returns the row's event time (its processing time without
// EventTime), or the timer's time.
func (c *Context[K, Out]) Time() time.Time { return time.Unix(0, c.ts).UTC() }

// Now returns the processing time.
func (c *Context[K, Out]) Now() time.Time { return time.Unix(0, c.sc.now).UTC() }

// Watermark returns the event-time watermark, the zero Time before any.
func (c *Context[K, Out]) Watermark() time.Time {
	if c.op.wm == engine.NoWatermark {
		return time.Time{}
	}
	return time.Unix(0, c.op.wm).UTC()
}

// TimerAt sets an event-time timer for the key at t: Timer is called once
// the watermark reaches t (or the input ends). Setting the same timer
// twice sets it once.
func (c *Context[K, Out]) TimerAt(t time.Time) { c.op.setTimer(c.sc.key, t.UnixNano(), EventTime) }

// ProcessingTimerAt sets a processing-time timer for the key at t.
func (c *Context[K, Out]) ProcessingTimerAt(t time.Time) {
	c.op.setTimer(c.sc.key, t.UnixNano(), ProcessingTime)
}

// DeleteTimer removes a timer set for the key.
func (c *Context[K, Out]) DeleteTimer(t time.Time, d Domain) {
	delete(c.op.timerSet, timerKey[K]{c.sc.key, t.UnixNano(), d})
}

// Option configures a keyed operator.
type Option func(*options)

type options struct {
	workers  int
	event    any
	bound    time.Duration
	idle     time.Duration
	sources  any
	states   []State
	maxKeys  int64
	maxBytes int64
	stage    []stage.Option
}

// DefaultMaxKeys is how many state entries a keyed operator holds at most
// (over its workers and states) unless MaxKeys says otherwise.
const DefaultMaxKeys = 1 << 22

// Workers spreads the keys over n workers (default 1).
func Workers(n int) Option {
	if n < 1 {
		panic("keyed: Workers: n must be at least 1")
	}
	return func(o *options) { o.workers = n }
}

// WithEventTime gives rows an event time and the stream a watermark: the
// highest time seen less bound. Event-time timers need it.
func WithEventTime[T any](fn func(T) time.Time, bound time.Duration) Option {
	if fn == nil || bound < 0 {
		panic("keyed: WithEventTime: nil function or negative bound")
	}
	return func(o *options) { o.event, o.bound = fn, bound }
}

// Idle lets a quiet source stop holding the watermark back after d (see
// window.Idle).
func Idle(d time.Duration) Option {
	if d <= 0 {
		panic("keyed: Idle: duration must be positive")
	}
	return func(o *options) { o.idle = d }
}

// Sources names each row's source for the watermark (see window.Sources).
func Sources[T any](fn func(T) int) Option {
	if fn == nil {
		panic("keyed: Sources: nil function")
	}
	return func(o *options) { o.sources = fn }
}

// States declares the states the function uses; their names must differ.
func States(states ...State) Option {
	return func(o *options) { o.states = append(o.states, states...) }
}

// MaxKeys bounds the state entries (one per key and state), split evenly
// between the workers (default DefaultMaxKeys).
func MaxKeys(n int) Option {
	if n < 1 {
		panic("keyed: MaxKeys: n must be at least 1")
	}
	return func(o *options) { o.maxKeys = int64(n) }
}

// MaxBytes bounds the estimated size of the state (the fixed size of each
// entry's values, not what they point to), split evenly between workers.
func MaxBytes(n int64) Option {
	if n < 1 {
		panic("keyed: MaxBytes: n must be at least 1")
	}
	return func(o *options) { o.maxBytes = n }
}

// Stage passes stage options to the operator: OnError, Retry, Timeout,
// Buffer. Concurrency is Workers.
func Stage(opts ...stage.Option) Option {
	return func(o *options) { o.stage = append(o.stage, opts...) }
}

// Process adds a keyed operator named name after s: every row goes, by
// key, to one of the operator's workers, in order, and fn is called with
// it and its key's Context. It returns the rows fn emits.
func Process[In any, K comparable, Out any](s pipeline.Stream[In], name string, key func(In) K, fn Func[K, In, Out], opts ...Option) pipeline.Stream[Out] {
	if key == nil || fn.Row == nil {
		panic("keyed: Process " + name + ": nil key or Row function")
	}
	o := options{workers: 1, maxKeys: DefaultMaxKeys}
	for _, opt := range opts {
		opt(&o)
	}
	c := &core[In, K, Out]{name: name, key: key, fn: fn, states: o.states}
	c.maxKeys = max(1, o.maxKeys/int64(o.workers))
	if o.maxBytes > 0 {
		c.maxBytes = max(1, o.maxBytes/int64(o.workers))
	}
	seen := map[string]bool{}
	var layout []string
	for _, st := range o.states {
		if seen[st.Name()] {
			panic("keyed: Process " + name + ": two states named " + st.Name())
		}
		seen[st.Name()] = true
		t, ok := st.newTable().(tabler[K])
		if !ok {
			panic(fmt.Sprintf("keyed: Process %s: state %s is not keyed by %v", name, st.Name(), reflect.TypeFor[K]()))
		}
		layout = append(layout, t.layout())
	}
	var marks *engine.Watermarks[In]
	if o.event != nil {
		ev, ok := o.event.(func(In) time.Time)
		if !ok {
			panic(fmt.Sprintf("keyed: Process %s: WithEventTime function %T does not take the rows (%v)", name, o.event, reflect.TypeFor[In]()))
		}
		c.event = func(v In) int64 { return ev(v).UnixNano() }
		marks = &engine.Watermarks[In]{Time: c.event, Bound: int64(o.bound), Idle: int64(o.idle)}
		if o.sources != nil {
			src, ok := o.sources.(func(In) int)
			if !ok {
				panic(fmt.Sprintf("keyed: Process %s: Sources function %T does not take the rows", name, o.sources))
			}
			marks.Source = src
		}
	}
	c.layout = fmt.Sprintf("keyed/v1 key=%v workers=%d states=[%s]", reflect.TypeFor[K](), o.workers, strings.Join(layout, " "))
	keyHash, stable := engine.KeyHash[K]()
	hash := func(v In) uint64 { return keyHash(key(v)) }
	node := engine.NewKeyed(name, o.workers, hash, marks, func(int) engine.Operator[In, Out] { return newOp(c) }, o.stage...)
	node.StableHash = stable
	c.now = node.Now
	out, _ := bridge.Keyed(s, name, node.Goroutines(), node.Stage().ErrorPolicy() == stage.DeadLetter, pipeline.Stream[Out]{}, false,
		func(ctx context.Context, env *engine.Env, in, out, _ any) error {
			return engine.StartKeyed(ctx, node, env, in.(*engine.Edge[In]), out.(*engine.Edge[Out]), nil)
		}, node.Stats, node.Checkpointed())
	return out.(pipeline.Stream[Out])
}
