package engine

import (
	"time"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/checkpoint"
)

// ErrorPolicy says what happens to a row whose function still fails after
// its retries.
type ErrorPolicy int

// Error policies. The zero value is FailFlow.
const (
	// FailFlow stops the pipeline; Wait returns the error.
	FailFlow ErrorPolicy = iota
	// Skip counts the row as failed and goes on.
	Skip
	// DeadLetter counts the row as failed and sends it, with its error, to
	// the pipeline's dead-letter stream.
	DeadLetter
)

// String returns the policy's name.
func (p ErrorPolicy) String() string {
	switch p {
	case FailFlow:
		return "fail"
	case Skip:
		return "skip"
	case DeadLetter:
		return "dead-letter"
	}
	return "ErrorPolicy(?)"
}

// MaxBackoff caps the wait between two retries.
const MaxBackoff = 30 * time.Second

type config struct {
	concurrency int
	unordered   bool
	onError     ErrorPolicy
	retries     int
	backoff     time.Duration
	timeout     time.Duration
	input       backpressure.Buffer
	buffered    bool // Buffer was given: the stage wants an edge of its own
	unfused     bool
	state       checkpoint.State
}

// Option configures a stage when it is created.
type Option func(*config)

func newConfig(opts []Option) config {
	c := config{concurrency: 1}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// Concurrency runs n workers for the stage. It panics if n < 1.
func Concurrency(n int) Option {
	if n < 1 {
		panic("stage: concurrency must be at least 1")
	}
	return func(c *config) { c.concurrency = n }
}

// Unordered lets results leave as soon as they are ready instead of in
// input order. It matters only with Concurrency > 1.
func Unordered() Option {
	return func(c *config) { c.unordered = true }
}

// OnError sets what happens to a row that fails after its retries.
func OnError(p ErrorPolicy) Option {
	if p < FailFlow || p > DeadLetter {
		panic("stage: unknown error policy")
	}
	return func(c *config) { c.onError = p }
}

// Retry retries a failing row up to attempts more times, waiting backoff
// before the first retry and twice as long before each next one, up to
// MaxBackoff. It panics if attempts or backoff is negative.
func Retry(attempts int, backoff time.Duration) Option {
	if attempts < 0 || backoff < 0 {
		panic("stage: negative retry attempts or backoff")
	}
	return func(c *config) { c.retries, c.backoff = attempts, backoff }
}

// Timeout gives every call of the function a context with deadline d. It
// panics if d is not positive.
func Timeout(d time.Duration) Option {
	if d <= 0 {
		panic("stage: timeout must be positive")
	}
	return func(c *config) { c.timeout = d }
}

// Buffer configures the buffer that feeds the stage; a pipeline's Start
// refuses one out of range.
func Buffer(cfg backpressure.Buffer) Option {
	return func(c *config) { c.input, c.buffered = cfg, true }
}

// Unfused keeps the stage out of fused chains: it runs on goroutines of its
// own, fed through a buffer, even where it could share the goroutine of the
// stage before or after it. Use it to spread stages that each take a long
// time per row over several cores.
func Unfused() Option {
	return func(c *config) { c.unfused = true }
}

// WithState makes st the state the stage keeps across rows: a pipeline
// with checkpoints captures it as each barrier passes the stage and
// restores it before a run. It panics if st is nil.
func WithState(st checkpoint.State) Option {
	if st == nil {
		panic("stage: nil state")
	}
	return func(c *config) { c.state = st }
}
