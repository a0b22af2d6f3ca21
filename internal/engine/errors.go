package engine

import (
	"fmt"
	"runtime/debug"
)

// Error is a failure of one stage: it names the flow and the stage and wraps
// the cause.
type Error struct {
	Flow  string
	Stage string
	Err   error
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("flow %s: stage %s: %v", e.Flow, e.Stage, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// PanicError is a panic recovered from a user function.
type PanicError struct {
	// Value is what was passed to panic.
	Value any
	// Stack is the stack of the panicking goroutine.
	Stack []byte
}

func newPanicError(v any) *PanicError {
	return &PanicError{Value: v, Stack: debug.Stack()}
}

// Error implements error: one line with the panic value. The stack stays
// in the Stack field.
func (e *PanicError) Error() string {
	return fmt.Sprintf("panic: %v", e.Value)
}

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}
