package window_test

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/window"
)

var (
	oracleCases = flag.Int("oracle.cases", 300, "random cases of TestOracle")
	oracleSeed  = flag.Uint64("oracle.seed", 0, "run only the TestOracle case of this seed")
)

// row is one event of the oracle's streams: a key, an event time in
// milliseconds, the source (partition) it came from and a value.
type row struct {
	Key string
	Ms  int64
	Src int
	V   int64
}

func (r row) time() time.Time { return time.UnixMilli(r.Ms) }

// scenario is one random case.
type scenario struct {
	rows      []row
	win       window.Windows
	kind      string
	size      int64 // ms
	slide     int64
	gap       int64
	bound     int64
	lateness  int64
	sources   bool
	workers   int
	early     int
	agg       string // fold, reduce, process
	batchSize int
}

func newScenario(seed uint64) scenario {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	sc := scenario{workers: 1 + r.IntN(4), batchSize: 1}
	switch r.IntN(3) {
	case 0:
		sc.kind, sc.size = "tumbling", int64(50+r.IntN(200))
		sc.slide = sc.size
		sc.win = window.Tumbling(time.Duration(sc.size) * time.Millisecond)
	case 1:
		sc.kind, sc.size = "sliding", int64(60+r.IntN(200))
		sc.slide = int64(10 + r.IntN(int(sc.size)-9))
		sc.win = window.Sliding(time.Duration(sc.size)*time.Millisecond, time.Duration(sc.slide)*time.Millisecond)
	default:
		sc.kind, sc.gap = "session", int64(5+r.IntN(60))
		sc.win = window.Session(time.Duration(sc.gap) * time.Millisecond)
	}
	sc.bound = int64(r.IntN(3)) * int64(r.IntN(80))
	sc.lateness = int64(r.IntN(2)) * int64(r.IntN(150))
	sc.sources = r.IntN(2) == 0
	if r.IntN(3) == 0 {
		sc.early = 1 + r.IntN(5)
	}
	inOrder := r.IntN(5) == 0
	if inOrder {
		sc.batchSize = 1 + r.IntN(512)
	}
	sc.agg = [...]string{"fold", "reduce", "process"}[r.IntN(3)]
	nkeys := 1 + r.IntN(40)
	nsrc := 1 + r.IntN(3)
	n := 50 + r.IntN(600)
	// Each source moves forward at its own pace; rows jitter back within
	// and beyond the bound; some sources go quiet for a while.
	clock := make([]int64, nsrc)
	for i := range clock {
		clock[i] = int64(r.IntN(100)) - 50 // negative times too
	}
	quiet := r.IntN(nsrc + 1)
	for i := range n {
		s := r.IntN(nsrc)
		if s == quiet && i > n/3 && i < 2*n/3 {
			s = (s + 1) % nsrc
		}
		clock[s] += int64(r.IntN(20))
		ms := clock[s]
		switch p := r.IntN(100); {
		case p < 20:
			ms -= int64(r.IntN(int(sc.bound) + 1))
		case p < 27:
			ms -= int64(r.IntN(400)) // late, maybe beyond lateness
		}
		sc.rows = append(sc.rows, row{Key: fmt.Sprintf("k%d", r.IntN(nkeys)), Ms: ms, Src: s, V: int64(r.IntN(1000))})
	}
	if inOrder {
		// Rows in event-time order are never late, whatever the batches.
		sort.SliceStable(sc.rows, func(i, j int) bool { return sc.rows[i].Ms < sc.rows[j].Ms })
	}
	return sc
}

func (sc scenario) String() string {
	return fmt.Sprintf("batch=%d %s size=%d slide=%d gap=%d bound=%d lateness=%d sources=%t workers=%d early=%d agg=%s rows=%d",
		sc.batchSize, sc.kind, sc.size, sc.slide, sc.gap, sc.bound, sc.lateness, sc.sources, sc.workers, sc.early, sc.agg, len(sc.rows))
}

// sumCount is the oracle's aggregate.
type sumCount struct{ Sum, N int64 }

type winKey struct {
	Key        string
	Start, End int64 // ms
}

// offline computes the windows of sc plainly: it replays the watermark
// row by row (rows travel one per batch, so each row is judged by the
// watermark after the rows before it), marks each row late or not, and
// groups the rows that are not late into their windows.
func (sc scenario) offline() (map[winKey]sumCount, []row) {
	const none = math.MinInt64
	maxBySrc := map[int]int64{}
	wm := int64(none)
	var late []row
	accepted := map[winKey]sumCount{}
	var sessionRows = map[string][]row{}
	for _, r := range sc.rows {
		expired := func(end int64) bool { return wm != none && wm-sc.lateness >= end }
		switch sc.kind {
		case "session":
			if wm != none && r.Ms < wm-sc.lateness {
				late = append(late, r)
			} else {
				sessionRows[r.Key] = append(sessionRows[r.Key], r)
			}
		default:
			any := false
			last := floorDiv(r.Ms, sc.slide) * sc.slide
			for start := last; start > r.Ms-sc.size; start -= sc.slide {
				if expired(start + sc.size) {
					continue
				}
				any = true
				k := winKey{r.Key, start, start + sc.size}
				a := accepted[k]
				accepted[k] = sumCount{a.Sum + r.V, a.N + 1}
			}
			if !any {
				late = append(late, r)
			}
		}
		// The watermark after this row.
		src := 0
		if sc.sources {
			src = r.Src
		}
		if m, ok := maxBySrc[src]; !ok || r.Ms > m {
			maxBySrc[src] = r.Ms
		}
		low := int64(math.MaxInt64)
		for _, m := range maxBySrc {
			low = min(low, m-sc.bound)
		}
		wm = max(wm, low)
	}
	for key, rs := range sessionRows {
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].Ms < rs[j].Ms })
		var cur winKey
		var acc sumCount
		for i, r := range rs {
			if i > 0 && r.Ms <= cur.End {
				cur.End = max(cur.End, r.Ms+sc.gap)
				acc = sumCount{acc.Sum + r.V, acc.N + 1}
				continue
			}
			if i > 0 {
				accepted[cur] = acc
			}
			cur, acc = winKey{key, r.Ms, r.Ms + sc.gap}, sumCount{r.V, 1}
		}
		if len(rs) > 0 {
			accepted[cur] = acc
		}
	}
	return accepted, late
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// run runs sc through a pipeline and returns every result and late row.
func (sc scenario) run(t *testing.T) ([]window.Result[string, sumCount], []row, pipeline.Stats) {
	p := pipeline.New("oracle", pipeline.BatchSize(sc.batchSize))
	src := pipeline.FromSlice(p, "events", sc.rows)
	key := func(r row) string { return r.Key }
	opts := []window.Option{window.EventTime(row.time, time.Duration(sc.bound)*time.Millisecond),
		window.Lateness(time.Duration(sc.lateness) * time.Millisecond), window.Workers(sc.workers)}
	if sc.sources {
		opts = append(opts, window.Sources(func(r row) int { return r.Src }))
	}
	if sc.early > 0 {
		opts = append(opts, window.EarlyCount(sc.early))
	}
	var results func() []window.Result[string, sumCount]
	var late func() []row
	switch sc.agg {
	case "fold":
		out := window.Fold(src, "win", key, sc.win, window.Agg[row, sumCount]{
			Add:   func(a sumCount, r row) sumCount { return sumCount{a.Sum + r.V, a.N + 1} },
			Merge: func(a, b sumCount) sumCount { return sumCount{a.Sum + b.Sum, a.N + b.N} },
		}, opts...)
		results, late = pipeline.Collect(out.Results(), "results"), pipeline.Collect(out.Late(), "late")
	case "reduce":
		out := window.Reduce(src, "win", key, sc.win, func(a, b row) row { a.V += b.V; return a }, opts...)
		conv := pipeline.Then(out.Results(), mapStage("sumcount", func(r window.Result[string, row]) window.Result[string, sumCount] {
			return window.Result[string, sumCount]{Key: r.Key, Start: r.Start, End: r.End, Count: r.Count, Firing: r.Firing, Value: sumCount{r.Value.V, r.Count}}
		}))
		results, late = pipeline.Collect(conv, "results"), pipeline.Collect(out.Late(), "late")
	default:
		out := window.Process(src, "win", key, sc.win, func(_ context.Context, w window.Window[string], rows []row, emit func(sumCount)) error {
			var a sumCount
			for _, r := range rows {
				if r.Key != w.Key {
					return fmt.Errorf("row of key %s in window of %s", r.Key, w.Key)
				}
				a = sumCount{a.Sum + r.V, a.N + 1}
			}
			emit(a)
			return nil
		}, opts...)
		results, late = pipeline.Collect(out.Results(), "results"), pipeline.Collect(out.Late(), "late")
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return results(), late(), p.Stats()
}

func TestOracle(t *testing.T) {
	cases := *oracleCases
	if testing.Short() {
		cases = 40
	}
	seeds := make([]uint64, cases)
	for i := range seeds {
		seeds[i] = uint64(i) + 1
	}
	if *oracleSeed != 0 {
		seeds = []uint64{*oracleSeed}
	}
	for _, seed := range seeds {
		sc := newScenario(seed)
		if !checkScenario(t, sc) {
			t.Fatalf("seed %d (%v): rerun with -run TestOracle -oracle.seed %d", seed, sc, seed)
		}
	}
}

// checkScenario compares a run of sc with the offline computation.
func checkScenario(t *testing.T, sc scenario) bool {
	t.Helper()
	want, wantLate := sc.offline()
	results, late, st := sc.run(t)
	ok := true
	errorf := func(format string, args ...any) {
		t.Helper()
		ok = false
		t.Errorf(format, args...)
	}
	last := map[winKey]window.Result[string, sumCount]{}
	for _, r := range results {
		k := winKey{r.Key, r.Start.UnixMilli(), r.End.UnixMilli()}
		if r.Value.N != r.Count {
			errorf("%v: value counts %d rows, result says %d", k, r.Value.N, r.Count)
		}
		last[k] = r
	}
	for k, w := range want {
		r, found := last[k]
		switch {
		case !found:
			errorf("window %v (%+v) never emitted", k, w)
		case r.Value != w:
			errorf("window %v: last result %+v (%v), want %+v", k, r.Value, r.Firing, w)
		}
	}
	for k := range last {
		if _, found := want[k]; found {
			continue
		}
		// Only a session merged into a later one may be superseded.
		contained := false
		for w := range want {
			contained = contained || sc.kind == "session" && w.Key == k.Key && w.Start <= k.Start && k.End <= w.End
		}
		if !contained {
			errorf("window %v emitted, not in the offline result", k)
		}
	}
	if !sameRows(late, wantLate) {
		errorf("late rows: got %d, want %d", len(late), len(wantLate))
	}
	conserved(t, st)
	node := st.Nodes[1]
	if node.Late != int64(len(wantLate)) || node.Held != 0 || node.StateKeys != 0 {
		errorf("node stats: late %d (want %d), held %d, state %d", node.Late, len(wantLate), node.Held, node.StateKeys)
	}
	return ok && !t.Failed()
}

func sameRows(a, b []row) bool {
	if len(a) != len(b) {
		return false
	}
	count := map[row]int{}
	for _, r := range a {
		count[r]++
	}
	for _, r := range b {
		count[r]--
		if count[r] < 0 {
			return false
		}
	}
	return true
}
