package engine

import (
	"context"
	"errors"
	"time"
	"unsafe"

	"github.com/kisflow/kisflow/row"
)

// worker is the state of one goroutine running a stage: the batch being
// filled and the counts of the current batch, added to the shared counters
// once per batch.
type worker[In, Out any] struct {
	s       *Stage[In, Out]
	env     *Env
	inPool  *Pool[In]
	outPool *Pool[Out]
	out     *Batch[Out]
	emit    func(Out)

	cur  Lineage // of the batch being processed, for LineageOf
	pos  int     // index of the row being processed, for panics
	mark int     // len(out.Rows) before the row being processed: its results start there
	// marks are the rows a chunk function failed one by one (see Chunk).
	marks []rowMark
	// links are the trace contexts of cur, a buffer reused (see Env.Trace).
	links []any

	filtered, failed, retried, deadLettered, delivered int64
	lastErr                                            error
}

// rowMark is one row a chunk function failed on its own.
type rowMark struct {
	i   int
	err error
}

func newWorker[In, Out any](s *Stage[In, Out], env *Env) *worker[In, Out] {
	w := &worker[In, Out]{s: s, env: env, inPool: PoolOf[In](), outPool: PoolOf[Out]()}
	w.emit = func(v Out) { w.out.Rows = append(w.out.Rows, v) }
	return w
}

// process runs the stage over one input batch, whose rows the caller has
// already counted in, and returns the output batch, which carries the
// input's trackers, with the number of input rows it passed on (0 for a
// sink, which counts what it consumes itself). The input batch is given
// back to its pool. A non-nil error fails the pipeline or says the run is
// ending: both batches are then abandoned, their trackers unreleased.
func (w *worker[In, Out]) process(ctx context.Context, in *Batch[In]) (*Batch[Out], int64, error) {
	start := time.Now()
	rows := in.Rows
	n := len(rows)
	switch {
	case w.s.inPlace:
		// In and Out are the same type: the results overwrite the rows
		// they come from (see Stage.inPlace), in the same batch.
		w.out = (*Batch[Out])(unsafe.Pointer(in))
		w.out.Rows = w.out.Rows[:0]
	case w.s.kind != KindSink:
		w.out = w.outPool.Get(n)
	}
	w.cur = in.Lineage()
	var end func(int, error)
	if tr := w.env.Trace; tr != nil {
		w.links = w.cur.Traces(w.links[:0])
		ctx, end = tr.StartBatch(ctx, w.env.Flow, w.s.name, n, w.links)
		clear(w.links)
	}
	var err error
	if w.s.loop != nil {
		err = w.each(ctx, rows)
	} else {
		err = w.chunk(ctx, rows)
	}
	w.cur = Lineage{}
	if end != nil {
		end(int(w.failed+w.deadLettered), err)
	}
	c := w.env.Counters
	d := time.Since(start)
	c.busy.Add(int64(d))
	c.batches.Add(1)
	handled := w.filtered + w.failed + w.deadLettered
	if w.filtered != 0 {
		c.filtered.Add(w.filtered)
	}
	if w.failed != 0 || w.deadLettered != 0 {
		c.failed.Add(w.failed)
		c.deadLettered.Add(w.deadLettered)
		c.setErr(w.lastErr)
	}
	if w.retried != 0 {
		c.retried.Add(w.retried)
	}
	if w.delivered != 0 {
		c.delivered.Add(w.delivered) // a sink: consumed rows are delivered, whatever comes next
	}
	w.filtered, w.failed, w.retried, w.deadLettered, w.delivered, w.lastErr = 0, 0, 0, 0, 0, nil
	out := w.out
	w.out = nil
	if w.env.Observe != nil {
		w.env.Observe(n, d)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = errEnding
		}
		return nil, 0, err
	}
	if out == nil { // a sink
		w.inPool.Put(in)
		return nil, 0, nil
	}
	if w.s.inPlace {
		if w.inPool.pointers {
			clear(rows[len(out.Rows):]) // rows filtered out: no references kept
		}
		return out, int64(n) - handled, nil
	}
	MoveTrackers(out, in)
	w.inPool.Put(in)
	return out, int64(n) - handled, nil
}

// errEnding is what process returns when the run's context ended under
// it: the run is over for a reason reported elsewhere.
var errEnding = errors.New("stage: run ending")

// each runs the stage's loop over rows. A failing or panicking row costs a
// trip through rowFailed and a restart of the loop after it; the loop
// itself carries no defer.
func (w *worker[In, Out]) each(ctx context.Context, rows []In) error {
	for len(rows) > 0 {
		i, err := w.eachSafe(ctx, rows)
		if i == len(rows) {
			return nil
		}
		if err = w.rowFailed(ctx, rows[i:i+1], err); err != nil {
			return err
		}
		rows = rows[i+1:]
	}
	return nil
}

// eachSafe runs the loop, turning a panic into an error for the row at
// w.pos and discarding what that row's call emitted.
func (w *worker[In, Out]) eachSafe(ctx context.Context, rows []In) (i int, err error) {
	defer func() {
		if r := recover(); r != nil {
			i, err = w.pos, newPanicError(r)
			w.truncate(w.mark)
		}
	}()
	return w.s.loop(ctx, w, rows)
}

// truncate makes the results end at index mark: it drops those of a
// failed call after it, and keeps those a loop wrote by index before it
// (see room) when a panic cut the loop short.
func (w *worker[In, Out]) truncate(mark int) {
	if w.out == nil {
		return
	}
	if len(w.out.Rows) > mark {
		clear(w.out.Rows[mark:])
	}
	w.out.Rows = w.out.Rows[:mark]
}

// rowFailed handles the one row of v whose function returned err: it
// retries the row, then applies the error policy. It returns an error only
// to fail the run.
func (w *worker[In, Out]) rowFailed(ctx context.Context, v []In, err error) error {
	err = w.retry(ctx, err, func() error {
		_, err := w.eachSafe(ctx, v)
		return err
	})
	if err == nil {
		return nil
	}
	return w.giveUp(ctx, err, v[0])
}

// chunk calls the stage's chunk function on all rows at once, retrying and
// applying the error policy to every row of the chunk together. Rows the
// function failed one by one (Chunk's fail) are then retried and given up
// on one at a time.
func (w *worker[In, Out]) chunk(ctx context.Context, rows []In) error {
	err := w.retry(ctx, w.attempt(ctx, rows, false), func() error { return w.attempt(ctx, rows, false) })
	if err != nil {
		for _, v := range rows {
			if err := w.giveUp(ctx, err, v); err != nil {
				return err
			}
		}
		return nil
	}
	if len(w.marks) == 0 {
		return nil
	}
	marks := append([]rowMark(nil), w.marks...)
	w.marks = w.marks[:0]
	for _, m := range marks {
		v := rows[m.i : m.i+1]
		if err := w.retry(ctx, m.err, func() error { return w.attempt(ctx, v, true) }); err != nil {
			if err := w.giveUp(ctx, err, v[0]); err != nil {
				return err
			}
		}
	}
	return nil
}

// attempt makes one call of the chunk function on rows; on failure (an
// error, a panic, or for a single row retried alone, failing it again)
// its results and counts are discarded.
func (w *worker[In, Out]) attempt(ctx context.Context, rows []In, single bool) error {
	mark := 0
	if w.out != nil {
		mark = len(w.out.Rows)
	}
	w.marks = w.marks[:0]
	delivered, filtered := w.delivered, w.filtered
	err := w.safe(func() error { return w.s.all(ctx, w, rows) })
	if err == nil && single && len(w.marks) > 0 {
		err = w.marks[0].err
	}
	if err != nil {
		w.truncate(mark)
		w.marks = w.marks[:0]
		w.delivered, w.filtered = delivered, filtered
	}
	return err
}

// fail records that row i of the chunk being processed failed with err.
func (w *worker[In, Out]) fail(i int, err error) {
	for _, m := range w.marks {
		if m.i == i {
			return // failed once already
		}
	}
	if err == nil {
		err = errors.New("row failed")
	}
	w.marks = append(w.marks, rowMark{i, err})
}

// safe calls fn, turning a panic into a *PanicError.
func (w *worker[In, Out]) safe(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = newPanicError(r)
		}
	}()
	return fn()
}

// retry calls attempt while err is not nil and retries are left, waiting
// with exponential backoff, capped by MaxBackoff, in between. It returns the
// last error, or ctx's cause if ctx ends during a wait.
func (w *worker[In, Out]) retry(ctx context.Context, err error, attempt func() error) error {
	if err == nil || w.s.cfg.retries == 0 {
		return err
	}
	wait := min(w.s.cfg.backoff, MaxBackoff)
	var t *time.Timer
	for try := 0; try < w.s.cfg.retries; try++ {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if wait > 0 {
			if t == nil {
				t = time.NewTimer(wait)
				defer t.Stop()
			} else {
				t.Reset(wait)
			}
			select {
			case <-t.C:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			wait = min(2*wait, MaxBackoff)
		}
		w.retried++
		if err = attempt(); err == nil {
			return nil
		}
	}
	return err
}

// giveUp applies the error policy to row v that failed with err.
func (w *worker[In, Out]) giveUp(ctx context.Context, err error, v In) error {
	if ctx.Err() != nil {
		// The run is ending; the row is abandoned, not failed on its own.
		return context.Cause(ctx)
	}
	w.lastErr = err
	switch w.s.cfg.onError {
	case Skip:
		w.failed++
		return nil
	case DeadLetter:
		if w.env.DeadLetter == nil {
			w.failed++
			return &Error{Flow: w.env.Flow, Stage: w.s.name, Err: errors.Join(ErrNoDeadLetter, err)}
		}
		if err := w.env.DeadLetter(ctx, row.Failure{Flow: w.env.Flow, Stage: w.s.name, Row: v, Err: err}); err != nil {
			return err // not taken: the row is abandoned with the run
		}
		w.deadLettered++
		return nil
	default:
		w.failed++
		return &Error{Flow: w.env.Flow, Stage: w.s.name, Err: err}
	}
}

// lineageKey is the context key under which a worker makes the lineage of
// its current batch known to the functions it calls.
type lineageKey struct{}

type lineageHolder interface{ lineage() Lineage }

func (w *worker[In, Out]) lineage() Lineage { return w.cur }

// context returns ctx carrying the worker, for LineageOf.
func (w *worker[In, Out]) context(ctx context.Context) context.Context {
	return context.WithValue(ctx, lineageKey{}, lineageHolder(w))
}

// LineageOf returns the lineage of the batch that the stage function
// given ctx is processing: rows made from it elsewhere (a feedback loop)
// inherit it, so its input is acknowledged only once they are handled too.
// ok is false when ctx is not one a stage passed to its function.
func LineageOf(ctx context.Context) (l Lineage, ok bool) {
	h, ok := ctx.Value(lineageKey{}).(lineageHolder)
	if !ok {
		return Lineage{}, false
	}
	return h.lineage(), true
}
