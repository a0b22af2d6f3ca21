package flow

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
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

	failRow  func(i int, err error) // the stage's per-row failure, nil for rows that jumped
	failed   []int                  // indices of rows failed with FailRow, in call order
	failErrs []error
	cursor   int // where FailRow starts looking for its row

	keyed *keyInfo // a keyed or windowed call's key, state and window
}

// FlowName returns the name of the flow.
func (h *Handle[In, Out]) FlowName() string { return h.run.flow.name }

// FuncName returns the name of the function being called.
func (h *Handle[In, Out]) FuncName() string { return h.fn.name }

// Input returns the rows of this call: the same slice the function got.
func (h *Handle[In, Out]) Input() []In { return h.rows }

// CommitRow passes one result row on to the next function.
func (h *Handle[In, Out]) CommitRow(row Out) {
	if h.out == nil {
		h.out = make([]Out, 0, len(h.rows)) // most functions commit a row per input row
	}
	h.out = append(h.out, row)
}

// CommitRowBatch passes result rows on, in order.
func (h *Handle[In, Out]) CommitRowBatch(rows []Out) { h.out = append(h.out, rows...) }

// FailRow fails one row of this call alone, with err: the row is counted
// Failed once, the function's error policy applies to it alone (Skip goes
// on, the default fails the run), and when the function's configuration
// sets retry_times the function is called again with just that row (with
// return_duration's backoff) before giving up on it. The rest of the chunk
// goes on with what the function commits. row must be one of this call's
// rows (the first equal one not failed yet is taken); a row that is not
// fails the whole call. A failed row passes on neither under DataReuse nor
// for a Verify function, and is not counted Filtered.
//
// A function that returns an error (or panics) instead fails its whole
// chunk: every row of it is counted Failed and gets the error policy, and
// retry_times calls the function again with the whole chunk.
func (h *Handle[In, Out]) FailRow(row In, err error) {
	i := h.find(row)
	if i < 0 {
		h.fail(errors.New("FailRow: the row is not one of this call's rows"))
		return
	}
	if err == nil {
		err = errors.New("row failed")
	}
	err = fmt.Errorf("flow %s: function %s: %w", h.run.flow.name, h.fn.name, err)
	h.failed = append(h.failed, i)
	if h.failRow != nil {
		h.failRow(i, err)
	} else {
		h.failErrs = append(h.failErrs, err)
	}
}

// find returns the index of the first row of this call equal to row that
// has not failed yet, looking from the cursor on (functions usually fail
// rows in order), or -1.
func (h *Handle[In, Out]) find(row In) int {
	n := len(h.rows)
	for k := range n {
		i := (h.cursor + k) % n
		if equalRows(h.rows[i], row) && !h.isFailed(i) {
			h.cursor = i + 1
			return i
		}
	}
	return -1
}

func (h *Handle[In, Out]) isFailed(i int) bool {
	for _, j := range h.failed {
		if j == i {
			return true
		}
	}
	return false
}

// equalRows compares two rows: with == when their type allows it, else
// (or when == panics on an incomparable dynamic value) as reflect.DeepEqual.
func equalRows[T any](a, b T) (eq bool) {
	if !reflect.TypeFor[T]().Comparable() {
		return reflect.DeepEqual(a, b)
	}
	defer func() {
		if recover() != nil {
			eq = reflect.DeepEqual(a, b)
		}
	}()
	return any(a) == any(b)
}

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
		switch a {
		case Abort:
			h.run.abort()
		case DataReuse:
			if _, ok := any(h.rows).([]Out); !ok {
				return h.fail(fmt.Errorf("%w: DataReuse needs the same input and output type, have %T and %T",
					ErrTypeMismatch, *new(In), *new(Out)))
			}
			h.reuse = true
		case ForceEntryNext:
			h.force = true
		default:
			target, ok := a.jumpTarget()
			if !ok {
				return h.fail(fmt.Errorf("flow: unknown action %q", string(a)))
			}
			if _, ok := h.run.index[target]; !ok {
				return h.fail(fmt.Errorf("%w: JumpFunc to %q, which is not in the flow", ErrUnknownFunction, target))
			}
			h.jump = target
		}
	}
	return nil
}

func (h *Handle[In, Out]) fail(err error) error {
	err = fmt.Errorf("flow %s: function %s: %w", h.run.flow.name, h.fn.name, err)
	h.actErr = err
	return err
}

// result returns the rows to pass on: the input rows under DataReuse
// (less those failed with FailRow), else what was committed.
// kept returns the input rows the call did not fail.
func (h *Handle[In, Out]) kept() []In {
	if len(h.failed) == 0 {
		return h.rows
	}
	kept := make([]In, 0, len(h.rows)-len(h.failed))
	for i, v := range h.rows {
		if !h.isFailed(i) {
			kept = append(kept, v)
		}
	}
	return kept
}

func (h *Handle[In, Out]) result() []Out {
	if !h.reuse {
		return h.out
	}
	rows := any(h.rows).([]Out)
	if len(h.failed) == 0 {
		return rows
	}
	kept := make([]Out, 0, len(rows)-len(h.failed))
	for i, v := range rows {
		if !h.isFailed(i) {
			kept = append(kept, v)
		}
	}
	return kept
}
