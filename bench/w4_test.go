// W4: fan-out and fan-in. Every row of 100,000 per op is broadcast to two
// branches that each map it with a different function; the branches merge
// into one sink, which gets two rows per source row. ns/row and rows/s count
// source rows. Target: at most 25 ns per source row.

package bench

import (
	"context"
	"testing"

	"github.com/kisflow/kisflow/fanout"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

const w4Rows = 100_000

// The two W4 branches: sum the fields (sumFields) on the left, and on the
// right a different combination of them.
func w4Right(_ context.Context, r Rec) (Rec, error) {
	r.Sum = r.A*r.B - r.C
	return r, nil
}

// w4Want is the expected count and checksum of W4's output for recs.
func w4Want(recs []Rec) (n, sum int64) {
	ctx := context.Background()
	for _, r := range recs {
		left, _ := sumFields(ctx, r)
		right, _ := w4Right(ctx, r)
		n += 2
		sum += left.Sum + right.Sum
	}
	return n, sum
}

// BenchmarkW4 broadcasts 100,000 rows per op to two mapping branches and
// merges them into one sink.
func BenchmarkW4(b *testing.B) {
	ctx := context.Background()
	recs := makeRecs(w4Rows)
	wantN, wantSum := w4Want(recs)
	run := func(b *testing.B, once func() (int64, int64)) {
		runVerified(b, w4Rows, wantN, wantSum, once)
	}
	b.Run("impl=seq", func(b *testing.B) {
		run(b, func() (n, sum int64) {
			for _, r := range recs {
				left, _ := sumFields(ctx, r)
				n++
				sum += left.Sum
				right, _ := w4Right(ctx, r)
				n++
				sum += right.Sum
			}
			return n, sum
		})
	})
	// The floor of any library that takes its stages as functions (see
	// BenchmarkW1's impl=funcs): the same loop calling both branches'
	// functions through function values.
	b.Run("impl=funcs", func(b *testing.B) {
		left, right := w4Funcs()
		run(b, func() (n, sum int64) {
			for _, r := range recs {
				if l, err := left(ctx, r); err == nil {
					n++
					sum += l.Sum
				}
				if r, err := right(ctx, r); err == nil {
					n++
					sum += r.Sum
				}
			}
			return n, sum
		})
	})
	b.Run("impl=chan", func(b *testing.B) {
		run(b, func() (int64, int64) {
			left, right := chanBroadcast(chanSource(recs))
			return chanCollect(chanMerge(
				chanStage(left, 1, mapped(sumFields)),
				chanStage(right, 1, mapped(w4Right)),
			))
		})
	})
	b.Run("impl=kisflow", func(b *testing.B) {
		run(b, func() (n, sum int64) {
			p := pipeline.New("W4")
			s := pipeline.FromSlice(p, "recs", recs)
			fan := fanout.Broadcast(s, "fan", 2)
			left := pipeline.Then(fan[0], stage.Map("left", sumFields))
			right := pipeline.Then(fan[1], stage.Map("right", w4Right))
			pipeline.To(fanout.Merge(left, right), stage.Sink("collect", func(_ context.Context, r Rec) error {
				n++
				sum += r.Sum
				return nil
			}))
			if err := p.Run(ctx); err != nil {
				b.Fatal(err)
			}
			return n, sum
		})
	})
}

// w4Funcs returns W4's two branch functions as values the compiler cannot
// see through (see funcValues).
//
//go:noinline
func w4Funcs() (left, right func(context.Context, Rec) (Rec, error)) {
	fs := []func(context.Context, Rec) (Rec, error){sumFields, w4Right}
	return fs[0], fs[1]
}
