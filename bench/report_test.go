package bench

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/kisflow/kisflow/internal/leaktest"
)

// chanBuf is the buffer of every channel in the impl=chan pipelines.
const chanBuf = 64

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leaktest.Options()...)
}

// reportRows reports ns/row and rows/s for a benchmark that handles rows
// rows per op.
func reportRows(b *testing.B, rows int) {
	b.Helper()
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perOp/float64(rows), "ns/row")
	b.ReportMetric(float64(rows)*1e9/perOp, "rows/s")
}

// runVerified runs once per benchmark iteration, failing the benchmark
// unless it returns wantN rows with checksum wantSum, then reports per-row
// metrics for rows rows per op.
func runVerified(b *testing.B, rows int, wantN, wantSum int64, once func() (int64, int64)) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		n, sum := once()
		if n != wantN || sum != wantSum {
			b.Fatalf("got %d rows sum %d, want %d rows sum %d", n, sum, wantN, wantSum)
		}
	}
	reportRows(b, rows)
}
