package flow

import (
	"fmt"
	"maps"
)

// Handle is what a KisFlow-style function gets besides its rows: the way to
// commit results, its parameters, the flow's cache and metadata, and Next.
// A Handle is valid only during the call it was passed to.
type Handle[In, Out any] struct {
	run    *run
	fn     *linkedFunc
	rows   []In
	out    []Out
	reuse  bool
	force  bool
	jump   string
	actErr error
}

// FlowName returns the name of the flow.
func (h *Handle[In, Out]) FlowName() string { return h.run.flow.name }

// FuncName returns the name of the function being called.
func (h *Handle[In, Out]) FuncName() string { return h.fn.name }

// Input returns the rows of this call: the same slice the function got.
func (h *Handle[In, Out]) Input() []In { return h.rows }

// CommitRow passes one result row on to the next function.
func (h *Handle[In, Out]) CommitRow(row Out) { h.out = append(h.out, row) }

// CommitRowBatch passes result rows on, in order.
func (h *Handle[In, Out]) CommitRowBatch(rows []Out) { h.out = append(h.out, rows...) }

// Param returns one parameter: the flow's value for this function, else
// the function's default_params value, else "".
func (h *Handle[In, Out]) Param(key string) string { return h.fn.params[key] }

// Params returns a copy of every parameter of this function in this flow.
func (h *Handle[In, Out]) Params() map[string]string { return maps.Clone(h.fn.params) }

// Cache returns the flow instance's cache.
func (h *Handle[In, Out]) Cache() *Cache { return &h.run.flow.cache }

// Meta returns the flow instance's metadata.
func (h *Handle[In, Out]) Meta() *Meta { return &h.run.flow.meta }

// FuncMeta returns this function's metadata in this flow instance.
func (h *Handle[In, Out]) FuncMeta() *Meta { return h.run.flow.funcMeta(h.fn.name) }

// Next asks the flow for actions; see Action. It returns an error for an
// action that cannot apply (DataReuse when the input and output types
// differ, a JumpFunc to a function the flow does not have).
func (h *Handle[In, Out]) Next(actions ...Action) error {
	for _, a := range actions {
		switch a.kind {
		case actAbort:
			h.run.abort()
		case actDataReuse:
			if _, ok := any(h.rows).([]Out); !ok {
				return h.fail(fmt.Errorf("%w: DataReuse needs the same input and output type, have %T and %T",
					ErrTypeMismatch, *new(In), *new(Out)))
			}
			h.reuse = true
		case actForceEntryNext:
			h.force = true
		case actJump:
			if _, ok := h.run.index[a.target]; !ok {
				return h.fail(fmt.Errorf("%w: JumpFunc to %q, which is not in the flow", ErrUnknownFunction, a.target))
			}
			h.jump = a.target
		default:
			return h.fail(fmt.Errorf("flow: unknown action %v", a))
		}
	}
	return nil
}

func (h *Handle[In, Out]) fail(err error) error {
	err = fmt.Errorf("flow %s: function %s: %w", h.run.flow.name, h.fn.name, err)
	h.actErr = err
	return err
}

// result returns the rows to pass on: the input rows under DataReuse,
// else what was committed.
func (h *Handle[In, Out]) result() []Out {
	if h.reuse {
		return any(h.rows).([]Out)
	}
	return h.out
}
