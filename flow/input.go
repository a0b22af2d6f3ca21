package flow

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sync"

	gojson "github.com/goccy/go-json"

	"github.com/kisflow/kisflow/pipeline"
)

// committer feeds committed rows into a flow.
type committer interface {
	// hold decodes row and keeps it until flush, for rows committed
	// while no run takes them; at most max rows are held.
	hold(row any, max int) error
	// count returns how many rows are held.
	count() int
	// flush submits the held rows and returns those that could not
	// enter because the run ended first (a []In), or nil.
	flush(ctx context.Context) (rest any)
	// adopt puts rows (each a []In that flush or take returned) before
	// the held rows, in order; it fails, adopting none, when they are of
	// another type.
	adopt(rows []any) error
	// take returns the held rows (a []In, or nil for none) and holds no
	// more.
	take() any
	// refused returns how many rows hold refused as bad (each counted
	// failed on this input), and the last error.
	refused() (int, error)
	// refuse counts n rows refused as bad while holding, with err: the
	// rows a run this one replaces had refused.
	refuse(n int, err error)
	// holdBatch is hold for each of rows in order, decoding them in
	// parallel; it returns how many it held: all, or those before the
	// first error.
	holdBatch(rows []any, max int) (int, error)
	// submit decodes row and submits it to the running flow.
	submit(ctx context.Context, row any) error
	// submitBatch is submit for each of rows in order, decoding them in
	// parallel; it returns how many the flow accepted: all, or those
	// before the first error.
	submitBatch(ctx context.Context, rows []any) (int, error)
	close()
}

// typedInput decodes committed rows into the first function's input type.
type typedInput[In any] struct {
	flow, fn string
	in       *pipeline.Input[In]
	must     []string
	mustAt   []mustSpan // where must's fields lie in In (see mustSpans)
	held     []In       // guarded by the run's lock while it is idle
	spare    *sync.Pool // of *[]In (see getSpare)
	heldBox  *[]In      // the pool's box of held, if it came from the pool
	bad      int        // rows hold refused as bad, guarded likewise
	badErr   error
}

func (t *typedInput[In]) hold(row any, max int) error {
	if len(t.held) >= max {
		var v In
		if err := t.rowInto(row, &v); err != nil {
			t.refuseBad(err)
			return err // a bad row is reported as such, held rows or not
		}
		return fmt.Errorf("flow %s: %w: %d rows wait for the next run (see MaxHeld)", t.flow, ErrHeldFull, len(t.held))
	}
	t.reuse()
	// Decode straight into the held slice: no row value escapes.
	var zero In
	t.held = append(t.held, zero)
	if err := t.rowInto(row, &t.held[len(t.held)-1]); err != nil {
		// Rows decode into zeroed memory (see decode): leave it so.
		clear(t.held[len(t.held)-1:])
		t.held = t.held[:len(t.held)-1]
		t.refuseBad(err)
		return err
	}
	return nil
}

func (t *typedInput[In]) holdBatch(rows []any, max int) (int, error) {
	k := min(len(rows), max-len(t.held))
	if k <= 0 {
		return 0, t.hold(rows[0], max)
	}
	t.reuse()
	start := len(t.held)
	t.held = slices.Grow(t.held, k)[:start+k]
	clear(t.held[start:]) // rows decode into zeroed memory (see decode)
	n, err := t.rowsInto(rows[:k], t.held[start:])
	if err != nil {
		clear(t.held[start+n:])
		t.held = t.held[:start+n]
		t.refuseBad(err)
		return n, err
	}
	if k < len(rows) {
		return k, t.hold(rows[k], max) // held full, or a bad row
	}
	return k, nil
}

// reuse takes a spare slice for the held rows if none is held yet.
func (t *typedInput[In]) reuse() {
	if t.held == nil {
		t.held, t.heldBox = t.getSpare()
	}
}

// refuseBad counts a bad row refused while holding: failed on the input,
// and remembered as refused (see refused).
func (t *typedInput[In]) refuseBad(err error) {
	t.in.Fail(err)
	t.bad, t.badErr = t.bad+1, err
}

func (t *typedInput[In]) count() int { return len(t.held) }

func (t *typedInput[In]) flush(ctx context.Context) any {
	held := t.held
	t.held = nil
	n, err := t.in.SubmitBatch(ctx, held)
	if err != nil && n < len(held) {
		return held[n:]
	}
	// SubmitBatch copied the rows: keep the slice for the next run's.
	clear(held)
	t.putSpare(held, t.heldBox)
	t.heldBox = nil
	return nil
}

// getSpare returns a spare slice of rows (empty; nil if there is none)
// and the box it was kept in, for putSpare.
func (t *typedInput[In]) getSpare() ([]In, *[]In) {
	if p, ok := t.spare.Get().(*[]In); ok {
		return (*p)[:0], p
	}
	return nil, nil
}

// putSpare keeps s, cleared, for a later getSpare, in box p (or a new box
// if p is nil): the pool holds pointers, which it takes without allocating.
func (t *typedInput[In]) putSpare(s []In, p *[]In) {
	if p == nil {
		p = new([]In)
	}
	*p = s[:0]
	t.spare.Put(p)
}

func (t *typedInput[In]) adopt(rows []any) error {
	var all []In
	for _, r := range rows {
		in, ok := r.([]In)
		if !ok {
			return fmt.Errorf("%w: rows held for the next run (%T) cannot go to its first function %s (input %v)", ErrTypeMismatch, r, t.fn, typeOf[In]())
		}
		all = append(all, in...)
	}
	t.held = append(all, t.held...)
	return nil
}

func (t *typedInput[In]) refused() (int, error) { return t.bad, t.badErr }

func (t *typedInput[In]) refuse(n int, err error) {
	for range n {
		t.in.Fail(err)
	}
	t.bad, t.badErr = t.bad+n, err
}

func (t *typedInput[In]) take() any {
	held := t.held
	t.held = nil
	if len(held) == 0 {
		return nil
	}
	return held
}

func (t *typedInput[In]) submit(ctx context.Context, row any) error {
	var v In
	if err := t.rowInto(row, &v); err != nil {
		t.in.Fail(err)
		return err
	}
	return t.in.Submit(ctx, v)
}

func (t *typedInput[In]) submitBatch(ctx context.Context, rows []any) (int, error) {
	buf, box := t.getSpare()
	buf = slices.Grow(buf, len(rows))[:len(rows)]
	clear(buf) // rows decode into zeroed memory (see decode)
	defer func() {
		clear(buf)
		t.putSpare(buf, box)
	}()
	good, bad := t.rowsInto(rows, buf)
	n, err := t.in.SubmitBatch(ctx, buf[:good]) // SubmitBatch copies the rows
	if err != nil {
		return n, err
	}
	if bad != nil {
		t.in.Fail(bad) // counted once it is this row's turn, as submit does
	}
	return good, bad
}

// parallelRows is the fewest rows rowsInto hands to a goroutine of its own:
// about 200 µs of decoding. Waking an idle core takes tens of microseconds
// on a virtual machine, so smaller parts finish no sooner than on one
// goroutine (measured: no gain with parts of 500 rows, 1.8 times faster on
// two cores with parts of 10,000).
const parallelRows = 2048

// rowsInto turns committed rows into the input type, in dst (as long as
// rows), and returns how many it turned: all, or those before the first
// that fails, with its error. Batches of more than parallelRows rows are
// split over GOMAXPROCS goroutines, since rows decode independently;
// batches of values (judged by the first row) need no decoding and are not.
func (t *typedInput[In]) rowsInto(rows []any, dst []In) (int, error) {
	parts := min(runtime.GOMAXPROCS(0), len(rows)/parallelRows)
	if parts < 2 {
		return t.rowsIntoSeq(rows, dst)
	}
	if _, isValue := rows[0].(In); isValue {
		return t.rowsIntoSeq(rows, dst)
	}
	size := (len(rows) + parts - 1) / parts
	good := make([]int, parts)
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for p := 1; p < parts; p++ {
		lo, hi := p*size, min((p+1)*size, len(rows))
		wg.Go(func() { good[p], errs[p] = t.rowsIntoSeq(rows[lo:hi], dst[lo:hi]) })
	}
	good[0], errs[0] = t.rowsIntoSeq(rows[:size], dst[:size])
	wg.Wait()
	for p, err := range errs {
		if err != nil {
			return p*size + good[p], err
		}
	}
	return len(rows), nil
}

// rowsIntoSeq is rowsInto on the calling goroutine.
func (t *typedInput[In]) rowsIntoSeq(rows []any, dst []In) (int, error) {
	for i, r := range rows {
		if err := t.rowInto(r, &dst[i]); err != nil {
			return i, err
		}
	}
	return len(rows), nil
}

// rowInto turns a committed row into the input type, in *v. It counts
// nothing: a caller counts a row that fails when it reports it.
func (t *typedInput[In]) rowInto(row any, v *In) error {
	switch r := row.(type) {
	case In:
		*v = r
		return nil
	case string:
		return t.decode([]byte(r), v)
	case []byte:
		return t.decode(r, v)
	case json.RawMessage:
		return t.decode(r, v)
	}
	return fmt.Errorf("flow %s: function %s: %w: a row of type %T for input %v", t.flow, t.fn, ErrTypeMismatch, row, typeOf[In]())
}

// decode turns JSON text into v, which must hold the zero value (JSON
// decoding leaves the fields the text lacks as they are), checking the
// fields of source.must: a field whose decoded value is not zero was
// there; only for one whose value is zero are the keys read again. It decodes
// with github.com/goccy/go-json, which answers as encoding/json does
// (FuzzCommitRow checks it against encoding/json) about ten times faster on
// KisFlow's rows, without allocating for flat structs.
func (t *typedInput[In]) decode(data []byte, v *In) error {
	err := gojson.Unmarshal(data, v)
	if err == nil && len(t.must) > 0 && !holdsAll(v, t.mustAt) {
		// A zero value may be a missing key: read the keys.
		if m := missing(data, t.must); m != "" {
			err = fmt.Errorf("missing field %q (source.must)", m)
		}
	}
	if err != nil {
		err = fmt.Errorf("flow %s: function %s: %w: %w", t.flow, t.fn, ErrBadRow, err)
	}
	return err
}

func (t *typedInput[In]) close() { t.in.Close() }
