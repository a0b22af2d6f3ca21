package flow

import "errors"

// Errors of the flow layer. Every error returned names the flow and, where
// it applies, the function, the connector and the cause.
var (
	// ErrUnknownFlow: no configuration for a flow of that name.
	ErrUnknownFlow = errors.New("flow: unknown flow")
	// ErrDisabled: the flow's configuration has status 0.
	ErrDisabled = errors.New("flow: flow disabled")
	// ErrUnknownFunction: a flow names a function with no configuration or
	// no registered implementation.
	ErrUnknownFunction = errors.New("flow: unknown function")
	// ErrTypeMismatch: two adjacent functions, or a row and the first
	// function, do not have fitting types, or a Verify function's input
	// and output types differ.
	ErrTypeMismatch = errors.New("flow: type mismatch")
	// ErrBadRow: a committed row does not decode, or lacks a field listed in
	// the first function's source.must.
	ErrBadRow = errors.New("flow: bad row")
	// ErrNoInput: rows were committed to a flow whose first function is a
	// Load function: its rows come from the connector.
	ErrNoInput = errors.New("flow: flow takes no committed rows")
	// ErrJumpLoop: rows jumped more than maxHops times.
	ErrJumpLoop = errors.New("flow: too many jumps")
	// ErrConnector: a Save or Load function's connector is missing or
	// failed to start.
	ErrConnector = errors.New("flow: connector")
	// ErrHeldFull: a row committed while no run takes rows was refused
	// because the flow holds its limit of rows (see WithMaxHeld).
	ErrHeldFull = errors.New("flow: held rows full")
	// ErrRunning: the flow is already running.
	ErrRunning = errors.New("flow: already running")
)
