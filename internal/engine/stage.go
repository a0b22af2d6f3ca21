package engine

import (
	"context"
	"fmt"
	"reflect"
	"slices"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/checkpoint"
)

// Kind is what a stage does with its rows.
type Kind int

// Stage kinds.
const (
	KindVerify Kind = iota + 1
	KindCalculate
	KindSink
)

// String returns KisFlow's name for the kind.
func (k Kind) String() string {
	switch k {
	case KindVerify:
		return "Verify"
	case KindCalculate:
		return "Calculate"
	case KindSink:
		return "Sink"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Stage is an immutable description of one function of a flow: its name,
// kind, function and options. Build stages with Verify, Map, FlatMap,
// MapBatch and Expand; a pipeline runs them.
type Stage[In, Out any] struct {
	name string
	kind Kind
	cfg  config
	// Exactly one of loop and all is set. loop runs the function over rows
	// until one fails, returning its index and error (or len(rows), nil);
	// all runs a whole-chunk function. Both append results to w.out and
	// count into w.
	loop loopFunc[In, Out]
	all  chunkFunc[In, Out]
	// inPlace marks a loop that writes each result over its input row or
	// an earlier one (Map with In and Out the same type, Verify): the
	// output batch is then the input batch itself.
	inPlace bool
}

type (
	loopFunc[In, Out any]  func(ctx context.Context, w *worker[In, Out], rows []In) (int, error)
	chunkFunc[In, Out any] func(ctx context.Context, w *worker[In, Out], rows []In) error
)

func newStage[In, Out any](name string, kind Kind, opts []Option) *Stage[In, Out] {
	if name == "" {
		panic("stage: empty stage name")
	}
	return &Stage[In, Out]{name: name, kind: kind, cfg: newConfig(opts)}
}

// Name returns the stage's name.
func (s *Stage[In, Out]) Name() string { return s.name }

// Kind returns the stage's kind.
func (s *Stage[In, Out]) Kind() Kind { return s.kind }

// Concurrency returns the number of workers.
func (s *Stage[In, Out]) Concurrency() int { return s.cfg.concurrency }

// Ordered reports whether results leave in input order.
func (s *Stage[In, Out]) Ordered() bool {
	return s.kind != KindSink && (!s.cfg.unordered || s.cfg.concurrency == 1)
}

// Fusable reports whether the stage may share a goroutine with its
// neighbours in a fused chain: it has one worker, and neither Unfused nor
// Buffer was given.
func (s *Stage[In, Out]) Fusable() bool {
	return s.cfg.concurrency == 1 && !s.cfg.unfused && !s.cfg.buffered
}

// State returns the state given with WithState, or nil.
func (s *Stage[In, Out]) State() checkpoint.State { return s.cfg.state }

// ErrorPolicy returns what happens to a row that fails after its retries.
func (s *Stage[In, Out]) ErrorPolicy() ErrorPolicy { return s.cfg.onError }

// Buffer returns the configuration of the buffer that feeds the stage.
func (s *Stage[In, Out]) Buffer() backpressure.Buffer { return s.cfg.input }

// Goroutines returns how many goroutines the stage runs.
func (s *Stage[In, Out]) Goroutines() int {
	n := s.cfg.concurrency
	switch {
	case n == 1:
		return 1
	case s.Ordered():
		return n + 2
	default:
		return n + 1
	}
}

// room makes space in b for n more rows and returns b's rows extended to
// their capacity, with the number of rows b holds. A loop writes results
// at index k and up, then sets b.Rows to the rows up to k; a panic leaves
// b.Rows as it was, and eachSafe keeps the rows up to w.mark (see
// truncate). Writing by index rather than appending keeps the slice in
// registers, which matters on stages of a few nanoseconds a row.
func room[T any](b *Batch[T], n int) ([]T, int) {
	k := len(b.Rows)
	if cap(b.Rows)-k < n {
		b.Rows = slices.Grow(b.Rows, n)
	}
	return b.Rows[:cap(b.Rows)], k
}

func withTimeout[In, R any](cfg config, fn func(context.Context, In) (R, error)) func(context.Context, In) (R, error) {
	if cfg.timeout == 0 {
		return fn
	}
	return func(ctx context.Context, v In) (R, error) {
		ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
		defer cancel()
		return fn(ctx, v)
	}
}

// Verify returns a stage that keeps a row when fn returns true, drops it
// (counted as filtered) when fn returns false, and fails it when fn returns
// an error.
func Verify[T any](name string, fn func(ctx context.Context, row T) (bool, error), opts ...Option) *Stage[T, T] {
	if fn == nil {
		panic("stage: Verify " + name + ": nil function")
	}
	s := newStage[T, T](name, KindVerify, opts)
	s.inPlace = true
	fn = withTimeout(s.cfg, fn)
	s.loop = func(ctx context.Context, w *worker[T, T], rows []T) (int, error) {
		out, k := room(w.out, len(rows))
		for i := range rows {
			w.pos, w.mark = i, k
			keep, err := fn(ctx, rows[i])
			switch {
			case err != nil:
				w.out.Rows = out[:k]
				return i, err
			case keep:
				out[k] = rows[i]
				k++
			default:
				w.filtered++
			}
		}
		w.out.Rows = out[:k]
		return len(rows), nil
	}
	return s
}

// Map returns a Calculate stage that turns each row into one result.
func Map[In, Out any](name string, fn func(ctx context.Context, row In) (Out, error), opts ...Option) *Stage[In, Out] {
	if fn == nil {
		panic("stage: Map " + name + ": nil function")
	}
	s := newStage[In, Out](name, KindCalculate, opts)
	s.inPlace = reflect.TypeFor[In]() == reflect.TypeFor[Out]()
	fn = withTimeout(s.cfg, fn)
	s.loop = func(ctx context.Context, w *worker[In, Out], rows []In) (int, error) {
		out, k := room(w.out, len(rows))
		for i := range rows {
			w.pos, w.mark = i, k
			o, err := fn(ctx, rows[i])
			if err != nil {
				w.out.Rows = out[:k]
				return i, err
			}
			out[k] = o
			k++
		}
		w.out.Rows = out[:k]
		return len(rows), nil
	}
	return s
}

// FlatMap returns a Calculate stage that emits any number of results per
// row by calling emit. Rows emitted by a call that then fails (an error or a
// panic) are discarded, so a retried row never emits twice. emit must not
// be used after fn returns.
func FlatMap[In, Out any](name string, fn func(ctx context.Context, row In, emit func(Out)) error, opts ...Option) *Stage[In, Out] {
	if fn == nil {
		panic("stage: FlatMap " + name + ": nil function")
	}
	s := newStage[In, Out](name, KindCalculate, opts)
	timeout := s.cfg.timeout
	call := func(ctx context.Context, v In, emit func(Out)) error {
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		return fn(ctx, v, emit)
	}
	s.loop = func(ctx context.Context, w *worker[In, Out], rows []In) (int, error) {
		for i, v := range rows {
			w.pos, w.mark = i, len(w.out.Rows)
			if err := call(ctx, v, w.emit); err != nil {
				w.truncate(w.mark)
				return i, err
			}
		}
		return len(rows), nil
	}
	return s
}

// MapBatch returns a Calculate stage that hands fn a whole chunk of rows at
// once. fn must not keep rows after it returns; the rows it returns are
// copied. An error fails (or retries) the whole chunk.
func MapBatch[In, Out any](name string, fn func(ctx context.Context, rows []In) ([]Out, error), opts ...Option) *Stage[In, Out] {
	if fn == nil {
		panic("stage: MapBatch " + name + ": nil function")
	}
	s := newStage[In, Out](name, KindCalculate, opts)
	fn = withTimeout(s.cfg, fn)
	s.all = func(ctx context.Context, w *worker[In, Out], rows []In) error {
		out, err := fn(ctx, rows)
		if err != nil {
			return err
		}
		w.out.Rows = append(w.out.Rows, out...)
		return nil
	}
	return s
}

// Expand returns a sink stage that consumes every row with fn.
func Sink[In any](name string, fn func(ctx context.Context, row In) error, opts ...Option) *Stage[In, struct{}] {
	if fn == nil {
		panic("stage: Sink " + name + ": nil function")
	}
	s := newStage[In, struct{}](name, KindSink, opts)
	if s.cfg.timeout > 0 {
		inner, d := fn, s.cfg.timeout
		fn = func(ctx context.Context, v In) error {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return inner(ctx, v)
		}
	}
	s.loop = func(ctx context.Context, w *worker[In, struct{}], rows []In) (int, error) {
		for i, v := range rows {
			w.pos = i
			if err := fn(ctx, v); err != nil {
				return i, err
			}
			w.delivered++
		}
		return len(rows), nil
	}
	return s
}

// ExpandBatch returns a sink stage that consumes a whole chunk of rows at
// once, for sinks that write in bulk (a broker, a database). An error fails
// (or retries) the whole chunk. fn must not keep rows after it returns.
func SinkBatch[In any](name string, fn func(ctx context.Context, rows []In) error, opts ...Option) *Stage[In, struct{}] {
	if fn == nil {
		panic("stage: SinkBatch " + name + ": nil function")
	}
	s := newStage[In, struct{}](name, KindSink, opts)
	if s.cfg.timeout > 0 {
		inner, d := fn, s.cfg.timeout
		fn = func(ctx context.Context, rows []In) error {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return inner(ctx, rows)
		}
	}
	s.all = func(ctx context.Context, w *worker[In, struct{}], rows []In) error {
		if err := fn(ctx, rows); err != nil {
			return err
		}
		w.delivered += int64(len(rows))
		return nil
	}
	return s
}

// VerifyBatch returns a Verify stage that hands fn a whole chunk of rows at
// once and keeps the rows it returns; the rest count as filtered. fn must
// return a subset of its rows (it may return rows of its own, but then the
// filtered count is the difference in length, never below zero).
func VerifyBatch[T any](name string, fn func(ctx context.Context, rows []T) ([]T, error), opts ...Option) *Stage[T, T] {
	if fn == nil {
		panic("stage: VerifyBatch " + name + ": nil function")
	}
	s := newStage[T, T](name, KindVerify, opts)
	if s.cfg.timeout > 0 {
		inner, d := fn, s.cfg.timeout
		fn = func(ctx context.Context, rows []T) ([]T, error) {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return inner(ctx, rows)
		}
	}
	s.all = func(ctx context.Context, w *worker[T, T], rows []T) error {
		kept, err := fn(ctx, rows)
		if err != nil {
			return err
		}
		w.out.Rows = append(w.out.Rows, kept...)
		w.filtered += int64(max(0, len(rows)-len(kept)))
		return nil
	}
	return s
}

// Chunk returns a stage of the given kind that hands fn a whole chunk of
// rows at once, like MapBatch, and lets fn fail single rows: fail(i, err)
// marks rows[i] as failed. Marked rows are retried alone (fn is called
// again with just that row) and then get the error policy one by one; the
// rest of the chunk goes on with the rows fn returned. An error returned by
// fn fails (or retries) the whole chunk. For a Verify stage the rows fn
// does not return (and did not fail) count as filtered; a sink (KindSink)
// delivers every row it did not fail and its results are ignored. It is
// how adapters such as package flow run chunk-at-a-time functions.
func Chunk[In, Out any](name string, kind Kind, fn func(ctx context.Context, rows []In, fail func(i int, err error)) ([]Out, error), opts ...Option) *Stage[In, Out] {
	if fn == nil {
		panic("stage: Chunk " + name + ": nil function")
	}
	if kind < KindVerify || kind > KindSink {
		panic("stage: Chunk " + name + ": unknown kind")
	}
	s := newStage[In, Out](name, kind, opts)
	if s.cfg.timeout > 0 {
		inner, d := fn, s.cfg.timeout
		fn = func(ctx context.Context, rows []In, fail func(int, error)) ([]Out, error) {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return inner(ctx, rows, fail)
		}
	}
	s.all = func(ctx context.Context, w *worker[In, Out], rows []In) error {
		out, err := fn(ctx, rows, w.fail)
		if err != nil {
			return err
		}
		ok := int64(len(rows) - len(w.marks))
		switch kind {
		case KindSink:
			w.delivered += ok
		case KindVerify:
			w.filtered += max(0, ok-int64(len(out)))
			fallthrough
		default:
			w.out.Rows = append(w.out.Rows, out...)
		}
		return nil
	}
	return s
}

// Discard returns a sink that drops every row, counting them filtered.
func Discard[In any](name string) *Stage[In, struct{}] {
	s := newStage[In, struct{}](name, KindSink, nil)
	s.all = func(_ context.Context, w *worker[In, struct{}], rows []In) error {
		w.filtered += int64(len(rows))
		return nil
	}
	return s
}
