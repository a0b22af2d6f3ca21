package engine

import "time"

// Sizes and times a pipeline uses when its options leave them zero; the
// public docs (packages backpressure and pipeline) state them.
const (
	// DefaultBatchSize is how many rows travel together between stages.
	DefaultBatchSize = 512
	// DefaultCapacity is the capacity, in rows, of a buffer whose
	// Capacity is zero.
	DefaultCapacity = 8 * DefaultBatchSize
	// MaxCapacity is the largest capacity, in rows, a buffer may have.
	MaxCapacity = 1 << 24
	// DefaultLinger is how long a partly filled batch of submitted rows
	// waits for more before it is sent.
	DefaultLinger = time.Millisecond
)
