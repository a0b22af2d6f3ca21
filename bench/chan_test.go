package bench

import (
	"context"
	"sync"
)

// The building blocks of the impl=chan pipelines: the plain goroutine and
// channel pattern, one goroutine (or n) per stage, channels buffered
// chanBuf, each closed by its only writer.

// chanSource sends recs on a new channel and closes it.
func chanSource(recs []Rec) <-chan Rec {
	out := make(chan Rec, chanBuf)
	go func() {
		defer close(out)
		for _, r := range recs {
			out <- r
		}
	}()
	return out
}

// chanStage runs fn on every row of in with workers goroutines and sends
// the rows fn keeps to a new channel, closed when every worker is done.
func chanStage(in <-chan Rec, workers int, fn func(Rec) (Rec, bool)) <-chan Rec {
	out := make(chan Rec, chanBuf)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for r := range in {
				if r, ok := fn(r); ok {
					out <- r
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	return out
}

// chanMerge forwards every row of ins to one channel, closed after all.
func chanMerge(ins ...<-chan Rec) <-chan Rec {
	out := make(chan Rec, chanBuf)
	var wg sync.WaitGroup
	for _, in := range ins {
		wg.Go(func() {
			for r := range in {
				out <- r
			}
		})
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	return out
}

// chanBroadcast copies every row of in to two new channels.
func chanBroadcast(in <-chan Rec) (<-chan Rec, <-chan Rec) {
	a, b := make(chan Rec, chanBuf), make(chan Rec, chanBuf)
	go func() {
		defer close(a)
		defer close(b)
		for r := range in {
			a <- r
			b <- r
		}
	}()
	return a, b
}

// chanCollect counts the rows of in and sums their Sum field.
func chanCollect(in <-chan Rec) (n, sum int64) {
	for r := range in {
		n++
		sum += r.Sum
	}
	return n, sum
}

// mapped adapts a stage function to chanStage.
func mapped(fn func(context.Context, Rec) (Rec, error)) func(Rec) (Rec, bool) {
	ctx := context.Background()
	return func(r Rec) (Rec, bool) {
		r, _ = fn(ctx, r)
		return r, true
	}
}

// kept adapts a Verify function to chanStage.
func kept(fn func(context.Context, Rec) (bool, error)) func(Rec) (Rec, bool) {
	ctx := context.Background()
	return func(r Rec) (Rec, bool) {
		ok, _ := fn(ctx, r)
		return r, ok
	}
}
