package pipeline_test

// Property test: random pipelines, random faults, random endings, and the
// library's accounting and acknowledgement promises checked after every run.
//
//	go test -run TestProperty ./pipeline/                       # default: 1000 cases, bounded wall time
//	KISFLOW_PROPERTY_CASES=100000 go test -run TestProperty -timeout 0 ./pipeline/
//	KISFLOW_PROPERTY_SEED=7 KISFLOW_PROPERTY_CASES=1 KISFLOW_PROPERTY_ONLY=123 go test -run TestProperty ./pipeline/
//
// Environment:
//
//	KISFLOW_PROPERTY_SEED    base seed (default 1)
//	KISFLOW_PROPERTY_CASES   number of cases (default 1000)
//	KISFLOW_PROPERTY_ONLY    run only this case number (replay)
//	KISFLOW_PROPERTY_BUDGET  wall budget, a Go duration; 0 means none. The
//	                         default is 25s when KISFLOW_PROPERTY_CASES is
//	                         unset, none otherwise.
//
// Case i draws everything from rand.NewPCG(seed, i), so a case is the same
// graph, options, faults and ending on every replay; the interleaving of its
// goroutines is not.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/checkpoint"
	"github.com/kisflow/kisflow/fanout"
	"github.com/kisflow/kisflow/internal/engine"
	"github.com/kisflow/kisflow/internal/leaktest"
	"github.com/kisflow/kisflow/internal/tracetest"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/row"
	"github.com/kisflow/kisflow/stage"
)

// propWatchdog bounds one case: a run that has not ended by then hangs.
const propWatchdog = 20 * time.Second

type propEnv struct {
	seed   uint64
	cases  int
	only   int // -1: all
	budget time.Duration
}

func propEnvFromOS(t *testing.T) propEnv {
	e := propEnv{seed: 1, cases: 1000, only: -1, budget: 25 * time.Second}
	if s := os.Getenv("KISFLOW_PROPERTY_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("KISFLOW_PROPERTY_SEED: %v", err)
		}
		e.seed = v
	}
	if s := os.Getenv("KISFLOW_PROPERTY_CASES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			t.Fatalf("KISFLOW_PROPERTY_CASES: %q", s)
		}
		e.cases = v
		e.budget = 0
	}
	if s := os.Getenv("KISFLOW_PROPERTY_ONLY"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			t.Fatalf("KISFLOW_PROPERTY_ONLY: %q", s)
		}
		e.only = v
	}
	if s := os.Getenv("KISFLOW_PROPERTY_BUDGET"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("KISFLOW_PROPERTY_BUDGET: %v", err)
		}
		e.budget = d
	}
	return e
}

func TestProperty(t *testing.T) {
	env := propEnvFromOS(t)
	leakOpts := append(leaktest.Options(), goleak.IgnoreCurrent())
	var tally propTally
	began := time.Now()
	ran := 0
	first, last := 0, env.cases
	if env.only >= 0 {
		first, last = env.only, env.only+1
	}
	for i := first; i < last; i++ {
		if env.budget > 0 && time.Since(began) > env.budget {
			t.Logf("wall budget %v spent after %d cases", env.budget, ran)
			break
		}
		out := runPropCase(t, env.seed, i)
		tally.add(out)
		if os.Getenv("KISFLOW_PROPERTY_VERBOSE") != "" {
			t.Logf("%s => err=%v abandoned=%d acks=%d/%d", out.desc, out.err, out.abandoned, out.acked, out.acks)
		}
		if err := goleak.Find(leakOpts...); err != nil {
			t.Fatalf("seed %d case %d: goroutines left after the run: %v\nreplay: KISFLOW_PROPERTY_SEED=%d KISFLOW_PROPERTY_CASES=1 KISFLOW_PROPERTY_ONLY=%d",
				env.seed, i, err, env.seed, i)
		}
		ran++
	}
	t.Logf("seed %d: %d cases in %v; %s", env.seed, ran, time.Since(began).Round(time.Millisecond), &tally)
}

// Endings.
const (
	endDrain = iota
	endStop
	endShutdown
	endCancel
	endFail
	endPanic
	numEndings
)

var endNames = [...]string{"drain", "stop", "shutdown", "cancel", "fail", "panic"}

// Source kinds.
const (
	srcSlice = iota
	srcSeq
	srcChan
	srcInput
	srcFunc
	numSources
)

var srcNames = [...]string{"slice", "seq", "chan", "input", "func"}

var (
	errInjected = errors.New("injected failure")
	errEnd      = errors.New("injected FailFlow error")
)

// A row's value is its tag (see propCase.tags) above tagShift and any bits
// below.
const (
	tagShift = 20
	tagMask  = 1<<tagShift - 1
)

// tagged returns a copy of rows tagged for a, registered before the call
// that submits them.
func (c *propCase) tagged(rows []int, a *ackRec) []int {
	tag := c.nextTag.Add(1)
	c.tags.Store(tag, a)
	out := make([]int, len(rows))
	for i, v := range rows {
		out[i] = int(tag)<<tagShift | v&tagMask
	}
	return out
}

// seen checks that row v, about to be processed by stage, does not derive
// from input already acknowledged.
func (c *propCase) seen(stage string, v int) {
	tag := int64(v >> tagShift)
	if tag == 0 {
		return
	}
	a, ok := c.tags.Load(tag)
	if !ok {
		return
	}
	if a.(*ackRec).calls.Load() != 0 {
		msg := fmt.Sprintf("stage %s got row %d of %s call %d after the call was acked", stage, v, a.(*ackRec).what, tag)
		c.earlyAck.CompareAndSwap(nil, &msg)
	}
}

// mix is splitmix64's finaliser: row values pick their faults with it.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// ackRec is one SubmitAck or Emit call with an ack function.
type ackRec struct {
	calls atomic.Int32
	rows  int
	n     int
	err   error
	what  string
	src   string
}

// sinkRec counts the rows one sink consumed, as its function saw them.
type sinkRec struct {
	name    string
	n       atomic.Int64
	collect func() []int // a Collect sink: its rows
	discard bool         // a Discard sink: its rows count filtered
}

// srcRec is what one source was given and what callers saw it accept.
type srcRec struct {
	name     string
	kind     int
	offered  int          // rows the source could take
	accepted atomic.Int64 // rows Submit/SubmitBatch/SubmitAck/Emit accepted
	fails    atomic.Int64 // Fail calls
	fed      atomic.Int64 // rows a channel feeder put on the channel
}

type propCase struct {
	seed uint64
	num  int
	rng  *rand.Rand
	desc []string

	p        *pipeline.Pipeline
	tracer   *tracetest.Tracer // half the cases are traced
	ending   int
	batch    int
	stress   bool
	cp       bool         // checkpoints on: no loop, Balance, DropOldest or merged dead letters
	timedOut atomic.Int64 // submissions cut short by their own deadline
	names    int

	trigAt   int64
	calls    atomic.Int64
	trigger  chan struct{}
	trigOnce sync.Once

	dlOn      bool
	dlMerged  bool
	mayFail   bool // the run may legitimately end with an error
	endStages int  // stages that fail once triggered (endFail, endPanic)
	dlStages  int  // stages with the DeadLetter policy

	attempts sync.Map // flaky faults: "stage/value" -> *atomic.Int32

	// Rows submitted with an ack carry a tag (the bits above tagShift) that
	// every derived row keeps; a function seeing a tagged row whose ack was
	// already called proves the ack came before the row was handled.
	tags     sync.Map // tag -> *ackRec
	nextTag  atomic.Int64
	earlyAck atomic.Pointer[string]

	mu      sync.Mutex
	acks    []*ackRec
	sinks   []*sinkRec
	sources []*srcRec
	inputs  []*pipeline.Input[int]
}

func (c *propCase) say(format string, args ...any) {
	c.desc = append(c.desc, fmt.Sprintf(format, args...))
}

func (c *propCase) String() string { return strings.Join(c.desc, " ") }

func (c *propCase) name(kind string) string {
	c.names++
	return fmt.Sprintf("%s%d", kind, c.names)
}

// tick counts one call of a user function on a row, and fires the trigger
// on the trigAt-th.
func (c *propCase) tick() {
	if c.calls.Add(1) == c.trigAt {
		c.trigOnce.Do(func() { close(c.trigger) })
	}
}

func (c *propCase) fired() bool {
	select {
	case <-c.trigger:
		return true
	default:
		return false
	}
}

// faults are what a stage's function does to the rows it is given.
type faults struct {
	c        *propCase
	stage    string
	salt     uint64
	errMod   uint64 // fail rows whose hash is 0 mod errMod (0: never)
	panicMod uint64
	slowMod  uint64
	flaky    bool // an error row fails its first attempt only
	endMode  int  // endFail or endPanic: every call fails once the trigger fired
	dl       bool // on the dead-letter branch: its rows are handled already
}

func (f *faults) String() string {
	var b strings.Builder
	if f.errMod != 0 {
		fmt.Fprintf(&b, ",err%%%d", f.errMod)
		if f.flaky {
			b.WriteString("(flaky)")
		}
	}
	if f.panicMod != 0 {
		fmt.Fprintf(&b, ",panic%%%d", f.panicMod)
	}
	if f.slowMod != 0 {
		fmt.Fprintf(&b, ",slow%%%d", f.slowMod)
	}
	switch f.endMode {
	case endFail:
		b.WriteString(",fails-at-trigger")
	case endPanic:
		b.WriteString(",panics-at-trigger")
	}
	return b.String()
}

// check runs the faults for row v: it may sleep, panic or return an error.
func (f *faults) check(ctx context.Context, v int) error {
	f.c.tick()
	if !f.dl {
		f.c.seen(f.stage, v)
	}
	h := mix(uint64(v) ^ f.salt)
	if f.slowMod != 0 && h%f.slowMod == 0 {
		d := time.Duration(h>>40%1000) * time.Microsecond
		if h&1 == 0 {
			time.Sleep(d)
		} else {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
		}
	}
	if f.endMode != 0 && f.c.fired() {
		if f.endMode == endPanic {
			panic("injected panic at trigger")
		}
		return errEnd
	}
	if f.panicMod != 0 && (h>>8)%f.panicMod == 0 {
		panic(fmt.Sprintf("injected panic on %d", v))
	}
	if f.errMod != 0 && (h>>16)%f.errMod == 0 {
		if f.flaky {
			a, _ := f.c.attempts.LoadOrStore(fmt.Sprintf("%s/%d", f.stage, v), new(atomic.Int32))
			if a.(*atomic.Int32).Add(1) > 1 {
				return nil
			}
		}
		return errInjected
	}
	return nil
}

func (f *faults) hash(v int) uint64 { return mix(uint64(v) ^ f.salt ^ 0x5bd1e995) }

// out is the deterministic result of a Map-like function.
func (f *faults) out(v int, j int) int {
	return v&^tagMask | int(mix(uint64(v)+uint64(j)*7919+f.salt)&tagMask)
}

// overflowPolicy draws an edge policy; Fail, which usually ends the run,
// is rarer than the others.
func (c *propCase) overflowPolicy() backpressure.Policy {
	if c.rng.IntN(12) == 0 {
		return backpressure.Fail
	}
	p := backpressure.Policy(c.rng.IntN(3))
	if c.cp && p == backpressure.DropOldest {
		p = backpressure.Block // could drop a barrier
	}
	return p
}

// stageSetup draws a stage's options and faults.
func (c *propCase) stageSetup(name string, dlBranch, noDeadLetter bool) ([]stage.Option, *faults, string) {
	r := c.rng
	var opts []stage.Option
	var d strings.Builder
	conc := 1 + r.IntN(8)
	if r.IntN(3) == 0 {
		conc = 1
	}
	opts = append(opts, stage.Concurrency(conc))
	fmt.Fprintf(&d, "c%d", conc)
	if conc > 1 && r.IntN(2) == 0 {
		opts = append(opts, stage.Unordered())
		d.WriteString(",unordered")
	}
	policy := stage.ErrorPolicy(r.IntN(3))
	if policy == stage.DeadLetter && (!c.dlOn || dlBranch || noDeadLetter) {
		policy = stage.Skip
	}
	f := &faults{c: c, stage: name, salt: r.Uint64(), dl: dlBranch}
	if (c.ending == endFail || c.ending == endPanic) && (c.endStages == 0 || r.IntN(3) == 0) {
		policy = stage.FailFlow
		f.endMode = c.ending
		c.endStages++
	}
	if policy == stage.DeadLetter {
		c.dlStages++
	}
	if policy != stage.FailFlow {
		opts = append(opts, stage.OnError(policy))
	}
	fmt.Fprintf(&d, ",%s", policy)
	if r.IntN(3) == 0 {
		n := r.IntN(3)
		b := time.Duration(r.IntN(50)) * time.Microsecond
		opts = append(opts, stage.Retry(n, b))
		fmt.Fprintf(&d, ",retry%d/%v", n, b)
	}
	// A stage with one worker and no Buffer runs fused with a neighbour
	// like it: draw many of those, and some kept apart with Unfused.
	fusable := conc == 1 && !c.stress && r.IntN(2) == 0
	if conc == 1 && r.IntN(6) == 0 {
		opts = append(opts, stage.Unfused())
		d.WriteString(",unfused")
	}
	if !fusable && (c.stress || r.IntN(2) == 0) {
		// Capacity is in rows, rounded up to whole batches: 1 to 4 batches.
		cfg := backpressure.Buffer{Capacity: 1 + r.IntN(4*c.batch), Policy: c.overflowPolicy()}
		if c.stress {
			cfg.Capacity = 1
		}
		if cfg.Policy == backpressure.Fail {
			c.mayFail = true
		}
		opts = append(opts, stage.Buffer(cfg))
		fmt.Fprintf(&d, ",in%d/%s", cfg.Capacity, cfg.Policy)
	}
	// Value faults: always allowed where a failure is handled, rarely where
	// it fails the run.
	if policy != stage.FailFlow || r.IntN(10) == 0 {
		if r.IntN(2) == 0 {
			f.errMod = uint64(3 + r.IntN(18))
			f.flaky = r.IntN(3) == 0
		}
		if r.IntN(3) == 0 {
			f.panicMod = uint64(5 + r.IntN(26))
		}
		if policy == stage.FailFlow && (f.errMod != 0 || f.panicMod != 0) {
			c.mayFail = true
		}
	}
	if c.stress || r.IntN(3) == 0 {
		f.slowMod = uint64(5 + r.IntN(46))
	}
	d.WriteString(f.String())
	return opts, f, d.String()
}

// addStage adds one random int->int stage after s.
func (c *propCase) addStage(s pipeline.Stream[int], dlBranch bool) pipeline.Stream[int] {
	r := c.rng
	kind := r.IntN(7)
	kinds := [...]string{"map", "flatmap", "verify", "mapbatch", "verifybatch", "chunk", "chunkverify"}
	name := c.name(kinds[kind])
	opts, f, d := c.stageSetup(name, dlBranch, false)
	c.say("%s[%s]", name, d)
	keepMod := uint64(2 + r.IntN(5))
	var st *stage.Stage[int, int]
	switch kind {
	case 0:
		st = stage.Map(name, func(ctx context.Context, v int) (int, error) {
			if err := f.check(ctx, v); err != nil {
				return 0, err
			}
			return f.out(v, 0), nil
		}, opts...)
	case 1:
		st = stage.FlatMap(name, func(ctx context.Context, v int, emit func(int)) error {
			n := int(f.hash(v) % 4)
			for j := range n {
				emit(f.out(v, j))
				if j == 0 {
					// A failure after emitting: what was emitted is discarded.
					if err := f.check(ctx, v); err != nil {
						return err
					}
				}
			}
			if n == 0 {
				return f.check(ctx, v)
			}
			return nil
		}, opts...)
	case 2:
		st = stage.Verify(name, func(ctx context.Context, v int) (bool, error) {
			if err := f.check(ctx, v); err != nil {
				return false, err
			}
			return f.hash(v)%keepMod != 0, nil
		}, opts...)
	case 3:
		st = stage.MapBatch(name, func(ctx context.Context, rows []int) ([]int, error) {
			var out []int
			for _, v := range rows {
				if err := f.check(ctx, v); err != nil {
					return nil, err
				}
				switch f.hash(v) % 6 {
				case 0: // combined away
				case 1:
					out = append(out, f.out(v, 0), f.out(v, 1))
				default:
					out = append(out, f.out(v, 0))
				}
			}
			return out, nil
		}, opts...)
	case 4:
		st = engine.VerifyBatch(name, func(ctx context.Context, rows []int) ([]int, error) {
			var out []int
			for _, v := range rows {
				if err := f.check(ctx, v); err != nil {
					return nil, err
				}
				if f.hash(v)%keepMod != 0 {
					out = append(out, v)
				}
			}
			return out, nil
		}, opts...)
	case 5, 6:
		k := engine.KindCalculate
		if kind == 6 {
			k = engine.KindVerify
		}
		st = engine.Chunk(name, k, func(ctx context.Context, rows []int, fail func(int, error)) ([]int, error) {
			var out []int
			for i, v := range rows {
				if err := f.check(ctx, v); err != nil {
					fail(i, err)
					continue
				}
				switch {
				case k == engine.KindCalculate:
					out = append(out, f.out(v, 0))
				case f.hash(v)%keepMod != 0:
					out = append(out, v)
				}
			}
			return out, nil
		}, opts...)
	}
	return pipeline.Then(s, st)
}

// addSink ends s with a random sink.
func (c *propCase) addSink(s pipeline.Stream[int], dlBranch, noDeadLetter bool) {
	r := c.rng
	switch r.IntN(20) {
	case 0:
		name := c.name("collect")
		c.say("%s", name)
		c.sinks = append(c.sinks, &sinkRec{name: name, collect: pipeline.Collect(s, name)})
		return
	case 1:
		name := c.name("discard")
		c.say("%s", name)
		pipeline.Discard(s, name)
		c.sinks = append(c.sinks, &sinkRec{name: name, discard: true})
		return
	}
	kind := r.IntN(3)
	kinds := [...]string{"expand", "expandbatch", "chunksink"}
	name := c.name(kinds[kind])
	opts, f, d := c.stageSetup(name, dlBranch, noDeadLetter)
	c.say("%s[%s]", name, d)
	rec := &sinkRec{name: name}
	c.sinks = append(c.sinks, rec)
	var st *stage.Stage[int, struct{}]
	switch kind {
	case 0:
		st = stage.Sink(name, func(ctx context.Context, v int) error {
			if err := f.check(ctx, v); err != nil {
				return err
			}
			rec.n.Add(1)
			return nil
		}, opts...)
	case 1:
		st = stage.SinkBatch(name, func(ctx context.Context, rows []int) error {
			for _, v := range rows {
				if err := f.check(ctx, v); err != nil {
					return err
				}
			}
			rec.n.Add(int64(len(rows)))
			return nil
		}, opts...)
	case 2:
		st = engine.Chunk(name, engine.KindSink, func(ctx context.Context, rows []int, fail func(int, error)) ([]struct{}, error) {
			ok := 0
			for i, v := range rows {
				if err := f.check(ctx, v); err != nil {
					fail(i, err)
					continue
				}
				ok++
			}
			rec.n.Add(int64(ok))
			return nil, nil
		}, opts...)
	}
	pipeline.To(s, st)
}

// loop merges a Feedback stream into s and adds a stage that sends some
// rows back through it, at most maxHops times.
func (c *propCase) loop(s pipeline.Stream[int]) pipeline.Stream[int] {
	r := c.rng
	fb, fs := pipeline.NewFeedback[int](c.p, c.name("feedback"))
	s = fanout.Merge(s, fs)
	name := c.name("loop")
	opts, f, d := c.stageSetup(name, false, false)
	maxHops := 1 + r.IntN(3)
	backMod := uint64(2 + r.IntN(4))
	c.say("%s[%s,hops%d,back%%%d]", name, d, maxHops, backMod)
	return pipeline.Then(s, stage.Map(name, func(ctx context.Context, v int) (int, error) {
		if err := f.check(ctx, v); err != nil {
			return 0, err
		}
		if pipeline.Hops(ctx) < maxHops && f.hash(v)%backMod == 0 {
			if err := fb.Send(ctx, []int{f.out(v, 1), f.out(v, 2)}[:1+int(f.hash(v)>>8%2)]); err != nil {
				return 0, err
			}
		}
		return f.out(v, 0), nil
	}, opts...))
}

// chain adds n stages after s.
func (c *propCase) chain(s pipeline.Stream[int], n int, dlBranch bool) pipeline.Stream[int] {
	for range n {
		s = c.addStage(s, dlBranch)
	}
	return s
}

// body builds a random graph after s and returns its open ends.
func (c *propCase) body(s pipeline.Stream[int], depth int) []pipeline.Stream[int] {
	r := c.rng
	kind := 0
	if depth < 2 {
		kind = r.IntN(6)
	}
	if kind == 0 || kind == 5 {
		n := 1 + r.IntN(4)
		if depth > 0 {
			n = r.IntN(3)
		}
		c.say("chain%d{", n)
		if depth == 0 && r.IntN(5) == 0 && !c.cp {
			s = c.loop(s)
		}
		s = c.chain(s, n, false)
		c.say("}")
		if kind == 0 {
			return []pipeline.Stream[int]{s}
		}
		kind = 1 + r.IntN(4)
	}
	var outs []pipeline.Stream[int]
	switch kind {
	case 1:
		n := 2 + r.IntN(2)
		name := c.name("broadcast")
		c.say("%s(%d){", name, n)
		outs = fanout.Broadcast(s, name, n)
	case 2:
		n := 2 + r.IntN(3)
		name := c.name("partition")
		c.say("%s(%d){", name, n)
		outs = fanout.Partition(s, name, n, func(v int) int { return v % 97 })
	case 3:
		n := 2 + r.IntN(2)
		cfg := backpressure.Buffer{}
		if r.IntN(2) == 0 {
			cfg = backpressure.Buffer{Capacity: 1 + r.IntN(4*c.batch), Policy: c.overflowPolicy()}
			if cfg.Policy == backpressure.Fail {
				c.mayFail = true
			}
		}
		c.say("balance(%d,%d/%s){", n, cfg.Capacity, cfg.Policy)
		if c.cp {
			// Balance passes no barriers: a Partition shares the rows alike.
			outs = fanout.Partition(s, c.name("balance"), n, func(v int) int { return v })
		} else {
			outs = fanout.Balance(s, "balance", n, cfg)
		}
	case 4:
		n := 2 + r.IntN(2)
		names := []string{"a", "b", "c"}[:n]
		name := c.name("route")
		c.say("%s(%d){", name, n)
		routes := fanout.Route(s, name, func(v int) string { return names[mix(uint64(v))%uint64(n)] }, names...)
		for _, nm := range names {
			outs = append(outs, routes[nm])
		}
	}
	var ends []pipeline.Stream[int]
	for i, b := range outs {
		c.say("br%d:", i)
		switch {
		case kind == 3 && r.IntN(4) != 0:
			// A balance branch with a stage; otherwise bare, which a merge
			// forwards.
			ends = append(ends, c.addStage(b, false))
		case depth+1 < 2 && r.IntN(4) == 0:
			ends = append(ends, c.body(b, depth+1)...)
		default:
			ends = append(ends, c.chain(b, r.IntN(3), false))
		}
	}
	c.say("}")
	if len(ends) > 1 && r.IntN(5) < 3 {
		c.say("merge")
		m := fanout.Merge(ends...)
		if r.IntN(2) == 0 {
			m = c.addStage(m, false)
		}
		return []pipeline.Stream[int]{m}
	}
	return ends
}

// addSource adds one random source of n rows starting at base.
func (c *propCase) addSource(n, base int) (pipeline.Stream[int], func(ctx context.Context, done <-chan struct{}, wg *sync.WaitGroup)) {
	r := c.rng
	kind := r.IntN(numSources)
	name := c.name("src-" + srcNames[kind])
	rec := &srcRec{name: name, kind: kind, offered: n}
	c.sources = append(c.sources, rec)
	rows := make([]int, n)
	for i := range rows {
		rows[i] = base + i
	}
	switch kind {
	case srcSlice:
		c.say("%s(%d)", name, n)
		return pipeline.FromSlice(c.p, name, rows), nil
	case srcSeq:
		c.say("%s(%d)", name, n)
		var it iter.Seq[int] = func(yield func(int) bool) {
			for _, v := range rows {
				if !yield(v) {
					return
				}
			}
		}
		return pipeline.FromSeq(c.p, name, it), nil
	case srcChan:
		buf := r.IntN(4)
		c.say("%s(%d,buf%d)", name, n, buf)
		ch := make(chan int, buf)
		feed := func(ctx context.Context, done <-chan struct{}, wg *sync.WaitGroup) {
			wg.Go(func() {
				defer close(ch)
				for _, v := range rows {
					select {
					case ch <- v:
						rec.fed.Add(1)
					case <-done:
						return
					}
				}
			})
		}
		return pipeline.FromChan(c.p, name, ch), feed
	case srcInput:
		in, s := pipeline.NewInput[int](c.p, name)
		c.inputs = append(c.inputs, in)
		g := 1 + r.IntN(3)
		hurry := r.IntN(4) == 0
		c.say("%s(%d,x%d,impatient=%v)", name, n, g, hurry)
		seeds := make([]uint64, g)
		for i := range seeds {
			seeds[i] = r.Uint64()
		}
		feed := func(ctx context.Context, done <-chan struct{}, wg *sync.WaitGroup) {
			for gi := range g {
				part := rows[gi*n/g : (gi+1)*n/g]
				wg.Go(func() { c.submitter(ctx, in, rec, part, seeds[gi], hurry) })
			}
		}
		return s, feed
	default:
		seed := r.Uint64()
		hurry := r.IntN(4) == 0
		c.say("%s(%d,impatient=%v)", name, n, hurry)
		return pipeline.FromFunc(c.p, name, func(ctx context.Context, e *pipeline.Emitter[int]) error {
			return c.emitter(ctx, e, rec, rows, seed, hurry)
		}), nil
	}
}

// submitter feeds rows to in with a mix of Submit, SubmitBatch and SubmitAck.
// An impatient submitter gives some calls a deadline of at most 300µs:
// under backpressure they return early with part of their rows accepted,
// and the submitter goes on with the rest, as SubmitBatch's doc says to.
func impatient(ctx context.Context, r *rand.Rand, on bool) (context.Context, context.CancelFunc) {
	if !on || r.IntN(3) != 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, time.Duration(r.IntN(300))*time.Microsecond)
}

// retryable reports whether a call failed only because its own deadline
// passed, the run going on.
func (c *propCase) retryable(ctx, callCtx context.Context, err error) bool {
	ok := err != nil && ctx.Err() == nil && callCtx.Err() != nil && errors.Is(err, context.DeadlineExceeded)
	if ok {
		c.timedOut.Add(1)
	}
	return ok
}

func (c *propCase) submitter(ctx context.Context, in *pipeline.Input[int], rec *srcRec, rows []int, seed uint64, hurry bool) {
	r := rand.New(rand.NewPCG(seed, 1))
	for len(rows) > 0 {
		callCtx, cancel := impatient(ctx, r, hurry)
		var n int
		var err error
		switch r.IntN(8) {
		case 0:
			in.Fail(errInjected)
			rec.fails.Add(1)
		case 1:
			if err = in.Submit(callCtx, rows[0]); err == nil {
				n = 1
			}
		case 2:
			var ok bool
			if ok, err = in.TrySubmit(rows[0]); ok {
				n = 1
			} else if err == nil {
				time.Sleep(20 * time.Microsecond) // full: try again soon
			}
		case 3, 4:
			k := min(len(rows), 1+r.IntN(10))
			n, err = in.SubmitBatch(callCtx, rows[:k])
		default:
			k := min(len(rows), 1+r.IntN(10))
			a := &ackRec{rows: k, what: "SubmitAck", src: rec.name}
			n, err = in.SubmitAck(callCtx, c.tagged(rows[:k], a), func() { a.calls.Add(1) })
			a.n, a.err = n, err
			c.mu.Lock()
			c.acks = append(c.acks, a)
			c.mu.Unlock()
		}
		cancel()
		rec.accepted.Add(int64(n))
		rows = rows[n:]
		if err != nil && !c.retryable(ctx, callCtx, err) {
			return
		}
	}
}

// emitter is a FromFunc source: it emits rows in small groups, most with
// an ack.
func (c *propCase) emitter(ctx context.Context, e *pipeline.Emitter[int], rec *srcRec, rows []int, seed uint64, hurry bool) error {
	r := rand.New(rand.NewPCG(seed, 2))
	for len(rows) > 0 {
		if r.IntN(10) == 0 {
			e.Fail(errInjected)
			rec.fails.Add(1)
			continue
		}
		k := min(len(rows), 1+r.IntN(12))
		var ack func()
		var a *ackRec
		if r.IntN(4) != 0 {
			a = &ackRec{rows: k, what: "Emit", src: rec.name}
			ack = func() { a.calls.Add(1) }
		}
		batch := rows[:k]
		if a != nil {
			batch = c.tagged(batch, a)
		}
		callCtx, cancel := impatient(ctx, r, hurry)
		n, err := e.Emit(callCtx, batch, ack)
		cancel()
		rec.accepted.Add(int64(n))
		if a != nil {
			a.n, a.err = n, err
			c.mu.Lock()
			c.acks = append(c.acks, a)
			c.mu.Unlock()
		}
		rows = rows[n:]
		if err != nil && !c.retryable(ctx, callCtx, err) {
			return err
		}
	}
	return nil
}

// build draws the whole case.
func (c *propCase) build() (feeds []func(context.Context, <-chan struct{}, *sync.WaitGroup)) {
	r := c.rng
	c.ending = r.IntN(numEndings)
	// One case in ten is a stress case: tiny batches, edges of one batch,
	// more rows and more slow rows.
	c.stress = r.IntN(10) == 0
	batch := 1 + r.IntN(64)
	if c.stress || r.IntN(3) == 0 {
		batch = 1 + r.IntN(4)
	}
	c.batch = batch
	popts := []pipeline.Option{pipeline.BatchSize(batch)}
	if r.IntN(3) == 0 {
		linger := []time.Duration{0, 50 * time.Microsecond, 500 * time.Microsecond, 2 * time.Millisecond}[r.IntN(4)]
		popts = append(popts, pipeline.Linger(linger))
		c.say("linger=%v", linger)
	}
	// Checkpoints are drawn from a generator of their own, so that the
	// rest of a case is what it was before they existed.
	cpr := rand.New(rand.NewPCG(c.seed^0xc4ec, uint64(c.num)))
	if c.cp = cpr.IntN(4) == 0; c.cp {
		every := []time.Duration{0, 100 * time.Microsecond, time.Millisecond}[cpr.IntN(3)]
		popts = append(popts, pipeline.Checkpoints(every, &checkpoint.Memory{}))
		c.say("checkpoints=%v", every)
	}
	// Traced or not is drawn apart from the case's random stream, so
	// that a seed draws the same cases as before tracing existed.
	if mix(c.seed^uint64(c.num)<<1)%2 == 0 {
		c.tracer = &tracetest.Tracer{}
		popts = append(popts, pipeline.Trace(c.tracer))
		c.say("traced")
	}
	c.p = pipeline.New("prop", popts...)
	c.dlOn = r.IntN(3) == 0
	c.say("ending=%s batch=%d stress=%v", endNames[c.ending], batch, c.stress)
	switch c.ending {
	case endCancel:
		c.mayFail = true
	case endFail, endPanic:
		c.mayFail = true
	}

	nsrc := 1
	if r.IntN(5) == 0 {
		nsrc = 2
	}
	var srcs []pipeline.Stream[int]
	for i := range nsrc {
		n := r.IntN(300)
		if c.stress || r.IntN(10) == 0 {
			n = r.IntN(3000)
		}
		s, feed := c.addSource(n, i*100_000)
		srcs = append(srcs, s)
		if feed != nil {
			feeds = append(feeds, feed)
		}
	}
	s := srcs[0]
	if nsrc > 1 {
		s = fanout.Merge(srcs...)
	}
	ends := c.body(s, 0)

	if c.dlOn {
		dl := pipeline.DeadLetters(c.p)
		name := c.name("dlmap")
		opts, f, d := c.stageSetup(name, true, true)
		c.say("dead-letters->%s[%s]", name, d)
		ds := pipeline.Then(dl, stage.Map(name, func(ctx context.Context, fl row.Failure) (int, error) {
			v := fl.Row.(int)
			if err := f.check(ctx, v); err != nil {
				return 0, err
			}
			// A dead-lettered row is handled: what the branch makes of it
			// is no longer part of its input's acknowledgement.
			return v & tagMask, nil
		}, opts...))
		ds = c.chain(ds, r.IntN(2), true)
		if r.IntN(2) == 0 && !c.cp {
			c.dlMerged = true
			c.say("dl-merged-into-end0")
			ends[0] = fanout.Merge(ends[0], ds)
		} else {
			c.say("dl-sink:")
			c.addSink(ds, true, true)
		}
	}
	for i, e := range ends {
		c.say("end%d:", i)
		// A sink fed by the dead-letter stream cannot send its own failures
		// there.
		c.addSink(e, false, i == 0 && c.dlMerged)
	}
	if c.ending == endShutdown {
		// Decided when the shutdown happens.
	}
	return feeds
}

func runPropCase(t *testing.T, seed uint64, num int) propOutcome {
	t.Helper()
	c := &propCase{seed: seed, num: num, rng: rand.New(rand.NewPCG(seed, uint64(num))), trigger: make(chan struct{})}
	c.say("case %d:", num)
	feeds := c.build()
	r := c.rng
	c.trigAt = -1
	if c.ending != endDrain {
		c.trigAt = 1 + r.Int64N(400)
		c.say("trigger@%d", c.trigAt)
	}
	// Now and then Stop comes before Start: the run must end as soon as it
	// starts, cleanly.
	early := c.ending == endStop && r.IntN(10) == 0
	if early {
		c.say("stop-before-start")
	}
	var shutdownWait time.Duration
	if c.ending == endShutdown {
		if r.IntN(2) == 0 {
			shutdownWait = time.Duration(r.IntN(200)) * time.Microsecond
			c.mayFail = true
		} else {
			shutdownWait = 10 * time.Second
		}
		c.say("shutdown-deadline=%v", shutdownWait)
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d case %d: %s\ncase: %s\nreplay: KISFLOW_PROPERTY_SEED=%d KISFLOW_PROPERTY_CASES=1 KISFLOW_PROPERTY_ONLY=%d go test -run TestProperty ./pipeline/",
			seed, num, fmt.Sprintf(format, args...), c, seed, num)
	}
	dump := func(what string) {
		var buf bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&buf, 2)
		t.Logf("goroutines:\n%s", buf.String())
		fail("%s", what)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if early {
		c.p.Stop()
	}
	if err := c.p.Start(ctx); err != nil {
		fail("Start: %v", err)
	}
	done := make(chan struct{})
	var helpers sync.WaitGroup
	feedDone := make(chan struct{})
	if len(feeds) == 0 {
		close(feedDone)
	} else {
		var fw sync.WaitGroup
		for _, f := range feeds {
			f(ctx, done, &fw)
		}
		helpers.Go(func() {
			fw.Wait()
			close(feedDone)
		})
	}
	watchdog := time.NewTimer(propWatchdog)
	defer watchdog.Stop()
	var shutdownErr chan error
	trig := (<-chan struct{})(c.trigger)
	if c.ending == endDrain {
		trig = nil
	}
	fd := (<-chan struct{})(feedDone)
	for ended := false; !ended; {
		select {
		case <-trig:
			trig = nil
			switch c.ending {
			case endStop:
				c.p.Stop()
			case endCancel:
				cancel()
			case endShutdown:
				shutdownErr = make(chan error, 1)
				sctx, scancel := context.WithTimeout(context.Background(), shutdownWait)
				helpers.Go(func() {
					defer scancel()
					shutdownErr <- c.p.Shutdown(sctx)
				})
			}
		case <-fd:
			fd = nil
			for _, in := range c.inputs {
				in.Close()
			}
		case <-c.p.Done():
			ended = true
		case <-watchdog.C:
			dump(fmt.Sprintf("the run did not end within %v", propWatchdog))
		}
	}
	err := c.p.Wait()
	close(done)
	helpersDone := make(chan struct{})
	go func() {
		helpers.Wait()
		close(helpersDone)
	}()
	select {
	case <-helpersDone:
	case <-watchdog.C:
		dump("feeders or Shutdown still running after the run ended")
	}
	if shutdownErr != nil {
		serr := <-shutdownErr
		if serr != nil && err == nil {
			fail("Shutdown returned %v but Wait returned nil", serr)
		}
	}
	c.check(err, fail)
	st := c.p.Stats()
	o := propOutcome{desc: c.String(), ending: c.ending, err: err, dropped: st.Dropped, deadLetter: st.DeadLettered, acks: len(c.acks), timedOut: c.timedOut.Load()}
	for _, n := range st.Nodes {
		o.abandoned += n.Abandoned
	}
	for _, e := range st.Edges {
		o.abandoned += e.Abandoned
	}
	for _, a := range c.acks {
		o.acked += int(a.calls.Load())
	}
	return o
}

// check verifies the library's promises on the ended run.
func (c *propCase) check(err error, fail func(string, ...any)) {
	st := c.p.Stats()
	sum := func(n pipeline.NodeStats) int64 {
		return n.Delivered + n.Filtered + n.Failed + n.DeadLettered + n.Abandoned
	}
	if got := st.Delivered + st.Filtered + st.Failed + st.Dropped + st.DeadLettered + st.Abandoned; st.In != got {
		fail("totals: In %d (created %d) != delivered %d + filtered %d + failed %d + dropped %d + dead-lettered %d + abandoned %d = %d (err %v)\n%s",
			st.In, st.Created, st.Delivered, st.Filtered, st.Failed, st.Dropped, st.DeadLettered, st.Abandoned, got, err, statsDump(st))
	}
	abandoned := int64(0)
	for _, n := range st.Nodes {
		if n.In != sum(n) {
			fail("node %s (%s): In %d != delivered %d + filtered %d + failed %d + dead-lettered %d + abandoned %d (err %v)\n%s",
				n.Name, n.Kind, n.In, n.Delivered, n.Filtered, n.Failed, n.DeadLettered, n.Abandoned, err, statsDump(st))
		}
		if n.State != "done" {
			fail("node %s in state %q after the run", n.Name, n.State)
		}
		abandoned += n.Abandoned
	}
	for _, e := range st.Edges {
		if e.Depth != 0 {
			fail("edge %s: depth %d after the run\n%s", e.Name, e.Depth, statsDump(st))
		}
		abandoned += e.Abandoned
	}
	wantState := pipeline.StateDone
	if err != nil {
		wantState = pipeline.StateFailed
	}
	if st.State != wantState {
		fail("state %q with Wait error %v", st.State, err)
	}
	if err == nil && abandoned != 0 {
		fail("Wait returned nil but %d rows were abandoned\n%s", abandoned, statsDump(st))
	}
	if err != nil && !c.mayFail {
		fail("Wait returned %v in a run that cannot fail\n%s", err, statsDump(st))
	}
	if msg := c.earlyAck.Load(); msg != nil {
		fail("ack before every derived row was handled: %s", *msg)
	}
	if c.tracer != nil {
		if bad := c.tracer.Unended(); len(bad) > 0 {
			fail("spans not ended exactly once: %v", bad)
		}
	}
	drained := err == nil && abandoned == 0
	for _, a := range c.acks {
		calls := a.calls.Load()
		switch {
		case calls > 1:
			fail("%s of %d rows acked %d times", a.what, a.rows, calls)
		case a.err != nil && calls != 0:
			fail("%s of %d rows returned (%d, %v) and was acked", a.what, a.rows, a.n, a.err)
		case a.err == nil && drained && calls != 1:
			fail("%s of %d rows accepted in a drained run and never acked\n%s", a.what, a.rows, statsDump(st))
		case a.err == nil && a.n != a.rows:
			fail("%s of %d rows returned nil error but %d accepted", a.what, a.rows, a.n)
		}
	}
	byName := map[string]pipeline.NodeStats{}
	for _, n := range st.Nodes {
		byName[n.Name] = n
	}
	// Rows abandoned by a source, or on the edge that only it feeds, belong
	// to input that must not be acknowledged.
	ackedRows := map[string]int64{}
	for _, a := range c.acks {
		if a.calls.Load() > 0 {
			ackedRows[a.src] += int64(a.rows)
		}
	}
	for _, s := range c.sources {
		n := byName[s.name]
		free := n.In - n.Failed - n.Abandoned
		for _, e := range st.Edges {
			if len(e.From) == 1 && e.From[0] == s.name {
				free -= e.Abandoned
			}
		}
		if ackedRows[s.name] > free {
			fail("source %s: %d rows acknowledged, but only %d of its %d rows were not failed or abandoned at the source or on its edge\n%s",
				s.name, ackedRows[s.name], free, n.In, statsDump(st))
		}
	}
	for _, s := range c.sources {
		n := byName[s.name]
		switch s.kind {
		case srcInput, srcFunc:
			// Input.Fail counts nothing once the run is over; Emitter.Fail
			// is only called while the source runs.
			if n.In-n.Failed != s.accepted.Load() || n.Failed > s.fails.Load() || (s.kind == srcFunc && n.Failed != s.fails.Load()) {
				fail("source %s: In %d, Failed %d, but callers saw %d rows accepted and made %d Fail calls",
					s.name, n.In, n.Failed, s.accepted.Load(), s.fails.Load())
			}
			if err == nil && c.ending == endDrain && s.accepted.Load() != int64(s.offered) {
				fail("source %s: drained run accepted %d of %d rows", s.name, s.accepted.Load(), s.offered)
			}
		case srcChan:
			if n.In > s.fed.Load() {
				fail("source %s: In %d > %d rows fed", s.name, n.In, s.fed.Load())
			}
			if err == nil && c.ending == endDrain && n.In != int64(s.offered) {
				fail("source %s: drained run took %d of %d rows", s.name, n.In, s.offered)
			}
		default:
			if n.In > int64(s.offered) {
				fail("source %s: In %d > %d rows", s.name, n.In, s.offered)
			}
			if err == nil && n.In != int64(s.offered) && c.ending == endDrain {
				fail("source %s: drained run took %d of %d rows", s.name, n.In, s.offered)
			}
		}
	}
	for _, in := range c.inputs {
		if w := in.Waiting(); w != 0 {
			fail("input: Waiting() = %d after the run", w)
		}
	}
	for _, s := range c.sinks {
		n := byName[s.name]
		switch {
		case s.collect != nil:
			if got := int64(len(s.collect())); got != n.Delivered {
				fail("Collect sink %s: Delivered %d but it gives %d rows", s.name, n.Delivered, got)
			}
			continue
		case s.discard:
			if n.Delivered != 0 || n.Failed != 0 {
				fail("Discard sink %s: Delivered %d, Failed %d; its rows count filtered", s.name, n.Delivered, n.Failed)
			}
			continue
		}
		if n.Delivered != s.n.Load() {
			fail("sink %s: Delivered %d but its function consumed %d rows", s.name, n.Delivered, s.n.Load())
		}
	}
}

func statsDump(st pipeline.Stats) string {
	var b strings.Builder
	fmt.Fprintf(&b, "totals: in %d created %d delivered %d filtered %d failed %d dropped %d dead-lettered %d abandoned %d state %s\n",
		st.In, st.Created, st.Delivered, st.Filtered, st.Failed, st.Dropped, st.DeadLettered, st.Abandoned, st.State)
	for _, n := range st.Nodes {
		fmt.Fprintf(&b, "  node %-16s %-11s dl=%-5v in %d out %d delivered %d filtered %d failed %d dead-lettered %d abandoned %d\n",
			n.Name, n.Kind, n.DeadLetter, n.In, n.Out, n.Delivered, n.Filtered, n.Failed, n.DeadLettered, n.Abandoned)
	}
	for _, e := range st.Edges {
		fmt.Fprintf(&b, "  edge %-30s %s cap %d depth %d sent %d dropped %d abandoned %d\n",
			e.Name, e.Policy, e.Capacity, e.Depth, e.Sent, e.Dropped, e.Abandoned)
	}
	return b.String()
}

// propOutcome is what one case ended with, for the tally.
type propOutcome struct {
	desc       string
	ending     int
	err        error
	abandoned  int64
	acks       int
	acked      int
	timedOut   int64
	dropped    int64
	deadLetter int64
}

// propTally summarises the outcomes, to show what the cases exercised.
type propTally struct {
	endings              [numEndings]int
	failed, abandoning   int
	acks, acked, dropped int
	timedOut             int64
	deadLettered         int
}

func (t *propTally) add(o propOutcome) {
	t.endings[o.ending]++
	if o.err != nil {
		t.failed++
	}
	if o.abandoned > 0 {
		t.abandoning++
	}
	if o.dropped > 0 {
		t.dropped++
	}
	if o.deadLetter > 0 {
		t.deadLettered++
	}
	t.acks += o.acks
	t.timedOut += o.timedOut
	t.acked += o.acked
}

func (t *propTally) String() string {
	var b strings.Builder
	for i, n := range t.endings {
		fmt.Fprintf(&b, "%s %d, ", endNames[i], n)
	}
	fmt.Fprintf(&b, "runs failed %d, with abandoned rows %d, with drops %d, with dead letters %d, acks %d of %d acknowledgeable calls, %d submissions cut short by their deadline",
		t.failed, t.abandoning, t.dropped, t.deadLettered, t.acked, t.acks, t.timedOut)
	return b.String()
}
