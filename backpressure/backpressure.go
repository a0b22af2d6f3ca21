package backpressure

import (
	"errors"
	"fmt"
)

// Policy says what a sender does when the buffer in front of a stage is
// full. The zero value is Block.
type Policy int

// Overflow policies.
const (
	// Block waits for room: backpressure, the default.
	Block Policy = iota
	// DropNewest discards the rows being sent.
	DropNewest
	// DropOldest discards the oldest queued rows to make room.
	DropOldest
	// Fail fails the run with ErrOverflow.
	Fail
)

// String returns the policy's name.
func (p Policy) String() string {
	switch p {
	case Block:
		return "block"
	case DropNewest:
		return "drop-newest"
	case DropOldest:
		return "drop-oldest"
	case Fail:
		return "fail"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// ErrOverflow is the cause of the error that fails a run when a buffer
// with the Fail policy is full.
var ErrOverflow = errors.New("backpressure: buffer full")

// Buffer configures the bounded buffer in front of a stage. The zero value
// is a blocking buffer of 4,096 rows.
type Buffer struct {
	// Capacity is how many rows the buffer holds, 0 meaning 4,096 (eight
	// batches of the default 512 rows). Rows travel in batches of the
	// pipeline's batch size, so the buffer holds Capacity rows rounded up
	// to whole batches, at least one. At most 1<<24; a pipeline's Start
	// refuses more.
	Capacity int
	// Policy is what a sender does when the buffer is full.
	Policy Policy
}
