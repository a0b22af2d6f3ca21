package stage

import (
	"context"
	"time"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/checkpoint"
	"github.com/kisflow/kisflow/internal/engine"
)

// Stage is an immutable description of one step of a pipeline: its name,
// kind, function and options. A pipeline runs it (pipeline.Then,
// pipeline.To); the same Stage may be used in several pipelines.
type Stage[In, Out any] = engine.Stage[In, Out]

// Verify returns a stage that keeps a row when fn returns true, drops it
// (counted Filtered) when fn returns false, and fails it when fn returns
// an error.
func Verify[T any](name string, fn func(ctx context.Context, row T) (bool, error), opts ...Option) *Stage[T, T] {
	return engine.Verify(name, fn, opts...)
}

// Map returns a stage that turns each row into one result.
func Map[In, Out any](name string, fn func(ctx context.Context, row In) (Out, error), opts ...Option) *Stage[In, Out] {
	return engine.Map(name, fn, opts...)
}

// FlatMap returns a stage that emits any number of results per row by
// calling emit. Rows emitted by a call that then fails (an error or a
// panic) are discarded, so a retried row never emits twice. emit must not
// be used after fn returns.
func FlatMap[In, Out any](name string, fn func(ctx context.Context, row In, emit func(Out)) error, opts ...Option) *Stage[In, Out] {
	return engine.FlatMap(name, fn, opts...)
}

// MapBatch returns a stage that hands fn a whole chunk of rows at once (up
// to the pipeline's batch size, split between workers). The rows fn
// returns are copied; fn must not keep rows after it returns. An error
// fails (or retries) the whole chunk.
func MapBatch[In, Out any](name string, fn func(ctx context.Context, rows []In) ([]Out, error), opts ...Option) *Stage[In, Out] {
	return engine.MapBatch(name, fn, opts...)
}

// Sink returns a stage that consumes every row with fn and sends nothing
// on: the end of a stream (pipeline.To). Rows fn consumes count as
// delivered.
func Sink[In any](name string, fn func(ctx context.Context, row In) error, opts ...Option) *Stage[In, struct{}] {
	return engine.Sink(name, fn, opts...)
}

// SinkBatch is Sink over a whole chunk of rows at once, for sinks that
// write in bulk (a broker, a database). An error fails (or retries) the
// whole chunk. fn must not keep rows after it returns.
func SinkBatch[In any](name string, fn func(ctx context.Context, rows []In) error, opts ...Option) *Stage[In, struct{}] {
	return engine.SinkBatch(name, fn, opts...)
}

// Option configures a stage when it is created.
type Option = engine.Option

// Concurrency runs n workers for the stage. It panics if n < 1.
func Concurrency(n int) Option { return engine.Concurrency(n) }

// Unordered lets results leave as soon as they are ready instead of in
// input order. It matters only with Concurrency above 1.
func Unordered() Option { return engine.Unordered() }

// Unfused keeps the stage out of fused chains. By default a pipeline runs
// adjacent stages that each have one worker, with no fan-out, fan-in or
// Buffer between them, on one goroutine, handing each batch from stage to
// stage without an edge; Unfused gives the stage goroutines of its own,
// fed through a buffer, so that stages that each take long per row run on
// different cores. Counting, order, retries and error policies are the
// same either way.
func Unfused() Option { return engine.Unfused() }

// State makes st the state the stage keeps across rows. In a pipeline
// with checkpoints (pipeline.Checkpoints) it is captured as each barrier
// passes the stage, between two batches, and restored from the last
// complete checkpoint before the run; see package checkpoint. The
// stage's function and st must agree on who touches the state: the
// pipeline calls st only while the function is not running. It panics if
// st is nil.
func State(st checkpoint.State) Option { return engine.WithState(st) }

// OnError sets what happens to a row that still fails after its retries.
func OnError(p ErrorPolicy) Option { return engine.OnError(p) }

// Retry retries a failing row up to attempts more times, waiting backoff
// before the first retry and twice as long before each next one, never
// more than 30 seconds. It panics if attempts or backoff is negative.
func Retry(attempts int, backoff time.Duration) Option { return engine.Retry(attempts, backoff) }

// Timeout gives every call of the function a context with deadline d; the
// function must honour its ctx for it to have an effect. It panics if d is
// not positive.
func Timeout(d time.Duration) Option { return engine.Timeout(d) }

// Buffer configures the bounded buffer that feeds the stage: its capacity
// in rows and its overflow policy (see package backpressure).
func Buffer(b backpressure.Buffer) Option { return engine.Buffer(b) }

// ErrorPolicy says what happens to a row whose function still fails after
// its retries.
type ErrorPolicy = engine.ErrorPolicy

// Error policies. The zero value is FailFlow.
const (
	// FailFlow fails the run: Wait returns an *Error naming the stage.
	FailFlow = engine.FailFlow
	// Skip counts the row as failed and goes on.
	Skip = engine.Skip
	// DeadLetter sends the row, with its error, to the pipeline's
	// dead-letter stream (pipeline.DeadLetters) as a row.Failure.
	DeadLetter = engine.DeadLetter
)

// Error is a failure of one stage: it names the flow and the stage and
// wraps the cause. Its Error method gives one line.
type Error = engine.Error

// PanicError is a panic recovered from a user function. It unwraps to the
// panic value when that is an error; Error gives one line, and the stack
// of the panicking goroutine is in the Stack field.
type PanicError = engine.PanicError
