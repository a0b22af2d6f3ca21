package flow

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"time"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/stream"
	"github.com/kisflow/kisflow/fanout"
	"github.com/kisflow/kisflow/internal/engine"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// funcImpl is a registered function with its types erased, so that flows
// configured at run time can link it. Every method asserts its stream or
// rows argument to the function's own types once per link or per chunk:
// no reflection per row.
type funcImpl interface {
	types() (in, out reflect.Type)
	// source makes the flow's source when it starts with this function:
	// a Load reading rd, or an input fed by CommitRow.
	source(r *run, lf *linkedFunc, rd connectors.Reader) (stream any, in committer)
	// link adds the function after prev, a pipeline.Stream[In], and
	// returns its output, a pipeline.Stream[Out] (nil for a sink).
	link(r *run, lf *linkedFunc, prev any) (any, error)
	// finish ends or forks the output stream: it saves it to w when w is
	// not nil, and discards it when it is the end of the flow. It returns
	// the stream the next function reads.
	finish(r *run, lf *linkedFunc, out any, w connectors.Writer, last bool) any
	// entry merges a feedback stream into prev, the function's input, and
	// sets lf.enter, which sends rows (a []In) through it: how rows jump
	// to the function, and how ForceEntryNext calls it with none.
	entry(r *run, lf *linkedFunc, prev any) any
}

// next says where a chunk's results go besides the next function.
type next struct {
	target string // JumpFunc target, or ""
	force  bool   // ForceEntryNext
	input  any    // the call's input rows it did not fail (a []In), sent by a jump that passes on nothing
	// allFailed says every input row was failed with FailRow.
	allFailed bool
}

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

// mismatch reports that stream or rows of type have cannot feed fn.
func mismatch(r *run, lf *linkedFunc, want reflect.Type) error {
	from := "the flow's input"
	if lf.idx > 0 {
		prev := r.funcs[lf.idx-1]
		_, out := prev.impl.types()
		from = fmt.Sprintf("function %s (output %v)", prev.name, out)
	}
	return fmt.Errorf("flow %s: flows[%d]: %w: function %s (input %v) cannot follow %s", r.flow.name, lf.idx, ErrTypeMismatch, lf.name, want, from)
}

// retryOpts turns the function's retry_times and return_duration (in
// milliseconds) into the stage's retry policy.
func retryOpts(fc *config.Func) []stage.Option {
	if fc == nil || fc.Option.RetryTimes <= 0 {
		return nil
	}
	return []stage.Option{stage.Retry(fc.Option.RetryTimes, time.Duration(fc.Option.ReturnDuration)*time.Millisecond)}
}

// typed holds what kisFunc and stageFunc share: everything that depends
// only on the input and output types.
type typed[In, Out any] struct{}

func (typed[In, Out]) types() (reflect.Type, reflect.Type) { return typeOf[In](), typeOf[Out]() }

func (typed[In, Out]) source(r *run, lf *linkedFunc, rd connectors.Reader) (any, committer) {
	if rd != nil {
		return stream.Load(r.p, lf.name+".load", rd, stream.JSON[In]()), nil
	}
	in, s := pipeline.NewInput[In](r.p, "input")
	var must []string
	if lf.conf != nil {
		must = lf.conf.Source.Must
	}
	return s, &typedInput[In]{flow: r.flow.name, fn: lf.name, in: in, must: must, mustAt: mustSpans[In](must), spare: &r.flow.spare}
}

func (typed[In, Out]) finish(r *run, lf *linkedFunc, out any, w connectors.Writer, last bool) any {
	s, ok := out.(pipeline.Stream[Out])
	if !ok {
		return nil // a sink: nothing to continue
	}
	if w != nil {
		save := stream.Save(lf.name+".save", w, stream.JSON[Out](), nil)
		if last {
			pipeline.To(s, save)
			return nil
		}
		branches := fanout.Broadcast(s, lf.name+".fork", 2)
		pipeline.To(branches[0], save)
		s = branches[1]
	}
	if last {
		pipeline.Discard(s, lf.name+".end")
		return nil
	}
	return s
}

func (typed[In, Out]) entry(r *run, lf *linkedFunc, prev any) any {
	s, ok := prev.(pipeline.Stream[In])
	if !ok {
		return prev // link reports the mismatch
	}
	fb, jumps := pipeline.NewFeedback[In](r.p, lf.name+".jumps")
	lf.enter = func(ctx context.Context, from *linkedFunc, rows any) error {
		var in []In
		if rows != nil {
			var ok bool
			if in, ok = rows.([]In); !ok {
				return fmt.Errorf("flow %s: function %s: %w: its rows (%T) cannot go to function %s (input %v)",
					r.flow.name, from.name, ErrTypeMismatch, rows, lf.name, typeOf[In]())
			}
		}
		return fb.Send(ctx, in)
	}
	return fanout.Merge(s, jumps)
}

// kisFunc is a registered KisFlow-style function.
type kisFunc[In, Out any] struct {
	typed[In, Out]
	fn   Func[In, Out]
	opts []stage.Option
}

func (k *kisFunc[In, Out]) link(r *run, lf *linkedFunc, prev any) (any, error) {
	s, ok := prev.(pipeline.Stream[In])
	if !ok {
		return nil, mismatch(r, lf, typeOf[In]())
	}
	if lf.mode == config.ModeVerify && typeOf[In]() != typeOf[Out]() {
		return nil, fmt.Errorf("flow %s: flows[%d]: %w: function %s has fmode Verify, which passes on some of its input rows, but its input type %v differs from its output type %v",
			r.flow.name, lf.idx, ErrTypeMismatch, lf.name, typeOf[In](), typeOf[Out]())
	}
	opts := append(append([]stage.Option(nil), k.opts...), retryOpts(lf.conf)...)
	if lf.conf != nil && lf.conf.Option.Key != "" {
		return k.linkKeyed(r, lf, s, opts)
	}
	last := lf.idx == len(r.funcs)-1
	process := func(ctx context.Context, rows []In, fail func(int, error)) ([]Out, error) {
		out, nx, err := k.call(ctx, r, lf, rows, fail)
		switch {
		case err != nil:
			return nil, err
		case nx.allFailed:
			// Every row failed alone: the call passes nothing on and
			// jumps nowhere (its rows are retried and given up on one
			// by one, and a jump would repeat with every retry).
			return nil, nil
		case nx.target != "":
			var jumped any = out
			if len(out) == 0 {
				jumped = nx.input // KisFlow runs the target again on data it had
			}
			return nil, r.jump(ctx, lf, nx.target, jumped)
		case nx.force && len(out) == 0 && !last:
			return nil, r.funcs[lf.idx+1].enter(ctx, lf, nil)
		}
		return out, nil
	}
	switch {
	case lf.mode == config.ModeExpand && last:
		// The end of the flow: the rows it did not fail are delivered
		// here, and what the function commits has nowhere to go.
		pipeline.To(s, engine.Chunk(lf.name, engine.KindSink, func(ctx context.Context, rows []In, fail func(int, error)) ([]struct{}, error) {
			_, err := process(ctx, rows, fail)
			return nil, err
		}, opts...))
		return nil, nil
	case lf.mode == config.ModeVerify:
		// Rows the function neither commits nor fails count as filtered.
		return pipeline.Then(s, engine.Chunk(lf.name, engine.KindVerify, process, opts...)), nil
	}
	return pipeline.Then(s, engine.Chunk(lf.name, engine.KindCalculate, process, opts...)), nil
}

// call calls the function on rows. fail fails one row alone.
func (k *kisFunc[In, Out]) call(ctx context.Context, r *run, lf *linkedFunc, rows []In, fail func(int, error)) ([]Out, next, error) {
	h := &Handle[In, Out]{run: r, fn: lf, rows: rows, failRow: fail}
	h.keyed, _ = ctx.Value(keyInfoKey{}).(*keyInfo)
	err := k.fn(ctx, h, rows)
	if err == nil {
		err = h.actErr
	}
	if err == nil && fail == nil && len(h.failErrs) > 0 {
		err = errors.Join(h.failErrs...)
	}
	if err != nil {
		return nil, next{}, err
	}
	nx := next{target: h.jump, force: h.force, allFailed: len(rows) > 0 && len(h.failed) == len(rows)}
	if nx.target != "" {
		nx.input = h.kept()
	}
	return h.result(), nx, nil
}

// stageFunc is a registered typed stage.
type stageFunc[In, Out any] struct {
	typed[In, Out]
	build func(params map[string]string) *stage.Stage[In, Out]
}

// buildStage calls the stage builder, turning a panic into an error (a
// *stage.PanicError), so that a reload never crashes the program that
// watches its configuration.
func (f *stageFunc[In, Out]) buildStage(params map[string]string) (st *stage.Stage[In, Out], err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &stage.PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return f.build(params), nil
}

// kinds says which stage kind each configured mode accepts (0: any).
var kinds = map[config.Mode]engine.Kind{
	config.ModeVerify:    engine.KindVerify,
	config.ModeCalculate: engine.KindCalculate,
	config.ModeExpand:    engine.KindSink,
}

func (f *stageFunc[In, Out]) link(r *run, lf *linkedFunc, prev any) (any, error) {
	s, ok := prev.(pipeline.Stream[In])
	if !ok {
		return nil, mismatch(r, lf, typeOf[In]())
	}
	st, err := f.buildStage(lf.params)
	if err != nil {
		return nil, fmt.Errorf("flow %s: flows[%d]: function %s: stage builder: %w", r.flow.name, lf.idx, lf.name, err)
	}
	if st == nil {
		return nil, fmt.Errorf("flow %s: function %s: stage builder returned nil", r.flow.name, lf.name)
	}
	if want, ok := kinds[lf.mode]; ok && st.Kind() != want {
		return nil, fmt.Errorf("flow %s: flows[%d]: function %s: %w: configured as %s but its stage is %s",
			r.flow.name, lf.idx, lf.name, ErrTypeMismatch, lf.mode, st.Kind())
	}
	if st.Kind() == engine.KindSink {
		sink := any(st).(*stage.Stage[In, struct{}])
		pipeline.To(s, sink)
		return nil, nil
	}
	return pipeline.Then(s, st), nil
}
