package schedule

import (
	"slices"
	"time"
)

// Report sums up the finished runs of one task over a period.
type Report struct {
	Task string `json:"task"`
	// Runs counts the runs that ran (skipped ones are not runs);
	// Succeeded those whose outcome is OutcomeOK; Skipped the firings
	// skipped.
	Runs      int `json:"runs"`
	Succeeded int `json:"succeeded"`
	Skipped   int `json:"skipped"`
	// SuccessRatio is Succeeded / Runs; 0 when there was no run.
	SuccessRatio float64 `json:"success_ratio"`
	// P50 and P95 are the run durations at those percentiles (nearest
	// rank).
	P50 time.Duration `json:"p50_ns"`
	P95 time.Duration `json:"p95_ns"`
	// Rows per run, averaged over the runs.
	RowsInPerRun     float64 `json:"rows_in_per_run"`
	RowsOutPerRun    float64 `json:"rows_out_per_run"`
	RowsFailedPerRun float64 `json:"rows_failed_per_run"`
}

// Summarize computes the report of task over runs (the runs of other
// tasks and those still running are ignored).
func Summarize(task string, runs []Run) Report {
	rep := Report{Task: task}
	var durs []time.Duration
	var in, out, failed int64
	for _, r := range runs {
		if r.Task != task || r.Outcome == OutcomeRunning {
			continue
		}
		if r.Outcome == OutcomeSkipped {
			rep.Skipped++
			continue
		}
		rep.Runs++
		if r.Outcome == OutcomeOK {
			rep.Succeeded++
		}
		durs = append(durs, r.Duration())
		in += r.RowsIn
		out += r.RowsOut
		failed += r.RowsFailed
	}
	if rep.Runs == 0 {
		return rep
	}
	n := float64(rep.Runs)
	rep.SuccessRatio = float64(rep.Succeeded) / n
	rep.RowsInPerRun, rep.RowsOutPerRun, rep.RowsFailedPerRun = float64(in)/n, float64(out)/n, float64(failed)/n
	slices.Sort(durs)
	rep.P50, rep.P95 = percentile(durs, 50), percentile(durs, 95)
	return rep
}

// percentile returns the nearest-rank p-th percentile of sorted.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 * n)
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}
