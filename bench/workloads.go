// Package bench holds the benchmarks that compare the pipeline runtime with
// a plain sequential loop (impl=seq) and a hand-written channel pipeline
// (impl=chan) on the same functions. Run them with
//
//	go test -run '^$' -bench . -benchmem ./bench/...
//
// and compare implementations with benchstat's -col /impl.
package bench

import (
	"context"
)

// Rec is the small struct that W1 and W4 stream.
type Rec struct {
	A, B, C int64
	Sum     int64
}

// makeRecs returns n records with fields derived from their index.
func makeRecs(n int) []Rec {
	rs := make([]Rec, n)
	for i := range rs {
		rs[i] = Rec{A: int64(i), B: int64(i % 7), C: int64(i % 13)}
	}
	return rs
}

// The three W1 stages: sum the fields, multiply, keep even sums.
func sumFields(_ context.Context, r Rec) (Rec, error) {
	r.Sum = r.A + r.B + r.C
	return r, nil
}

func multiply(_ context.Context, r Rec) (Rec, error) {
	r.Sum *= 3
	return r, nil
}

func keepEven(_ context.Context, r Rec) (bool, error) {
	return r.Sum%2 == 0, nil
}
