// KisFlowJSON: the cost of committing rows as JSON text to a KisFlow-style
// flow (package flow). 20,000 student rows per op go through two
// functions, a Calculate that totals each student's scores and an Expand
// that sums the totals into a checksum. impl=kisflow-json commits each row
// as JSON text, which the flow decodes into the first function's input
// type; impl=kisflow-json-batch commits the same text 5,000 rows at a time
// (decoded in parallel); impl=kisflow-typed commits the same rows as values; impl=seq
// decodes with json.Unmarshal and applies the same two steps in a loop.
// kisflow-json minus kisflow-typed is what the JSON path costs per row.

package bench

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/flow"
)

const jsonRows = 20_000

// jsonStudent is one committed row, as in KisFlow's quick start.
type jsonStudent struct {
	ID     int64 `json:"stu_id"`
	Score1 int64 `json:"score_1"`
	Score2 int64 `json:"score_2"`
	Score3 int64 `json:"score_3"`
}

// jsonTotal is the Calculate function's output.
type jsonTotal struct {
	ID    int64 `json:"stu_id"`
	Total int64 `json:"total"`
}

// The two steps: total a student's scores; fold a total into the checksum.
func totalScores(s jsonStudent) jsonTotal {
	return jsonTotal{ID: s.ID, Total: s.Score1 + s.Score2 + s.Score3}
}

func checksum(sum int64, t jsonTotal) int64 { return sum + t.ID*t.Total }

// makeStudents returns n students and the same rows as JSON text.
func makeStudents(n int) ([]jsonStudent, [][]byte) {
	rows := make([]jsonStudent, n)
	texts := make([][]byte, n)
	for i := range rows {
		rows[i] = jsonStudent{ID: int64(100 + i), Score1: int64(i % 101), Score2: int64(i * 7 % 101), Score3: int64(i * 13 % 101)}
		b, err := json.Marshal(rows[i])
		if err != nil {
			panic(err)
		}
		texts[i] = b
	}
	return rows, texts
}

// jsonWant is the expected count and checksum for rows.
func jsonWant(rows []jsonStudent) (n, sum int64) {
	for _, s := range rows {
		n++
		sum = checksum(sum, totalScores(s))
	}
	return n, sum
}

// jsonFlow builds the two-function flow; its Expand function adds into n
// and sum. must is the first function's source.must.
func jsonFlow(b *testing.B, n, sum *atomic.Int64, must []string) *flow.Flow {
	b.Helper()
	reg := flow.NewRegistry()
	flow.MustRegister(reg, "TotalScores", func(_ context.Context, h *flow.Handle[jsonStudent, jsonTotal], rows []jsonStudent) error {
		for _, s := range rows {
			h.CommitRow(totalScores(s))
		}
		return nil
	})
	flow.MustRegister(reg, "Checksum", func(_ context.Context, _ *flow.Handle[jsonTotal, jsonTotal], rows []jsonTotal) error {
		var s int64
		for _, t := range rows {
			s = checksum(s, t)
		}
		n.Add(int64(len(rows)))
		sum.Add(s)
		return nil
	})
	f := reg.Define("KisFlowJSON")
	if err := f.Link(&config.Func{Name: "TotalScores", Mode: config.ModeCalculate, Source: config.Source{Must: must}}, nil); err != nil {
		b.Fatal(err)
	}
	if err := f.Link(&config.Func{Name: "Checksum", Mode: config.ModeExpand}, nil); err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkKisFlowJSON commits 20,000 rows per op to a KisFlow-style flow,
// as JSON text or as values, and runs it.
func BenchmarkKisFlowJSON(b *testing.B) {
	ctx := context.Background()
	rows, texts := makeStudents(jsonRows)
	wantN, wantSum := jsonWant(rows)
	run := func(b *testing.B, once func() (int64, int64)) {
		runVerified(b, jsonRows, wantN, wantSum, once)
	}
	b.Run("impl=seq", func(b *testing.B) {
		run(b, func() (n, sum int64) {
			for _, text := range texts {
				var s jsonStudent
				if err := json.Unmarshal(text, &s); err != nil {
					b.Fatal(err)
				}
				n++
				sum = checksum(sum, totalScores(s))
			}
			return n, sum
		})
	})
	// kisflow commits every row with commit (before the run, as in
	// KisFlow: the rows wait in memory), then runs the flow.
	kisflow := func(b *testing.B, must []string, commit func(f *flow.Flow, i int) error) {
		var n, sum atomic.Int64
		f := jsonFlow(b, &n, &sum, must)
		run(b, func() (int64, int64) {
			n.Store(0)
			sum.Store(0)
			for i := range jsonRows {
				if err := commit(f, i); err != nil {
					b.Fatal(err)
				}
			}
			if err := f.Run(ctx); err != nil {
				b.Fatal(err)
			}
			return n.Load(), sum.Load()
		})
	}
	b.Run("impl=kisflow-typed", func(b *testing.B) {
		kisflow(b, nil, func(f *flow.Flow, i int) error { return f.CommitRow(context.Background(), rows[i]) })
	})
	b.Run("impl=kisflow-json", func(b *testing.B) {
		kisflow(b, nil, func(f *flow.Flow, i int) error { return f.CommitRow(context.Background(), texts[i]) })
	})
	// The rows committed 5,000 at a time with CommitRowBatch, which
	// decodes a batch over every core.
	b.Run("impl=kisflow-json-batch", func(b *testing.B) {
		batch := make([]any, 0, 5000)
		kisflow(b, nil, func(f *flow.Flow, i int) error {
			batch = append(batch, texts[i])
			if len(batch) < cap(batch) && i < jsonRows-1 {
				return nil
			}
			_, err := f.CommitRowBatch(context.Background(), batch...)
			batch = batch[:0]
			return err
		})
	})
	// With source.must: every row is also checked for its required fields.
	b.Run("impl=kisflow-json-must", func(b *testing.B) {
		kisflow(b, []string{"stu_id"}, func(f *flow.Flow, i int) error { return f.CommitRow(context.Background(), texts[i]) })
	})
}
