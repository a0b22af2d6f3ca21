package flow_test

import (
	"context"
	"fmt"
	"testing/fstest"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/flow"
)

// StuScores is a committed row of the examples: a student's three scores.
type StuScores struct {
	ID     int `json:"stu_id"`
	Score1 int `json:"score_1"`
	Score2 int `json:"score_2"`
	Score3 int `json:"score_3"`
}

// StuAvgScore is a student's average score.
type StuAvgScore struct {
	ID  int     `json:"stu_id"`
	Avg float64 `json:"avg_score"`
}

// avgStuScore is a Calculate function: one average per student.
func avgStuScore(_ context.Context, h *flow.Handle[StuScores, StuAvgScore], rows []StuScores) error {
	for _, s := range rows {
		h.CommitRow(StuAvgScore{ID: s.ID, Avg: float64(s.Score1+s.Score2+s.Score3) / 3})
	}
	return nil
}

// printStuAvgScore is an Expand function: it prints the averages.
func printStuAvgScore(_ context.Context, _ *flow.Handle[StuAvgScore, StuAvgScore], rows []StuAvgScore) error {
	for _, a := range rows {
		fmt.Printf("stuid: [%+v], avg score: [%+v]\n", a.ID, a.Avg)
	}
	return nil
}

// A flow built in code: register the functions, define the flow, link the
// functions with their configuration, commit rows and run it.
func ExampleRegistry_Define() {
	reg := flow.NewRegistry()
	flow.MustRegister(reg, "AvgStuScore", avgStuScore)
	flow.MustRegister(reg, "PrintStuAvgScore", printStuAvgScore)

	f := reg.Define("CalStuAvgScore")
	if err := f.Link(&config.Func{Name: "AvgStuScore", Mode: config.ModeCalculate}, nil); err != nil {
		fmt.Println(err)
		return
	}
	if err := f.Link(&config.Func{Name: "PrintStuAvgScore", Mode: config.ModeExpand}, nil); err != nil {
		fmt.Println(err)
		return
	}

	// Rows are JSON text, decoded into the first function's input type,
	// or values of that type.
	_ = f.CommitRow(context.Background(), `{"stu_id":101, "score_1":100, "score_2":90, "score_3":80}`)
	_ = f.CommitRow(context.Background(), StuScores{ID: 102, Score1: 100, Score2: 70, Score3: 60})
	if err := f.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// stuid: [101], avg score: [90]
	// stuid: [102], avg score: [76.66666666666667]
}

// A flow configured in KisFlow's YAML files. Rows without a field of the
// first function's source.must are refused with ErrBadRow.
func ExampleRegistry_LoadFS() {
	conf := fstest.MapFS{
		"conf/flow-CalStuAvgScore.yml": {Data: []byte(`kistype: flow
status: 1
flow_name: CalStuAvgScore
flows:
  - fname: AvgStuScore
  - fname: PrintStuAvgScore
`)},
		"conf/func-AvgStuScore.yml": {Data: []byte(`kistype: func
fname: AvgStuScore
fmode: Calculate
source:
  name: 学生学分
  must:
    - stu_id
`)},
		"conf/func-PrintStuAvgScore.yml": {Data: []byte(`kistype: func
fname: PrintStuAvgScore
fmode: Expand
source:
  name: 学生学分
  must:
    - stu_id
`)},
	}

	reg := flow.NewRegistry()
	flow.MustRegister(reg, "AvgStuScore", avgStuScore)
	flow.MustRegister(reg, "PrintStuAvgScore", printStuAvgScore)
	if err := reg.LoadFS(conf, "conf"); err != nil {
		fmt.Println(err)
		return
	}
	f, err := reg.NewFlow("CalStuAvgScore")
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = f.CommitRow(context.Background(), `{"stu_id":101, "score_1":100, "score_2":90, "score_3":80}`)
	if err := f.CommitRow(context.Background(), `{"score_1":100}`); err != nil {
		fmt.Println(err)
	}
	_ = f.CommitRow(context.Background(), `{"stu_id":102, "score_1":100, "score_2":70, "score_3":60}`)
	if err := f.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// flow CalStuAvgScore: function AvgStuScore: flow: bad row: missing field "stu_id" (source.must)
	// stuid: [101], avg score: [90]
	// stuid: [102], avg score: [76.66666666666667]
}

// Actions: a function that only looks at its rows passes them on with
// DataReuse instead of committing each one again.
func ExampleHandle_Next() {
	reg := flow.NewRegistry()
	flow.MustRegister(reg, "CountRows", func(_ context.Context, h *flow.Handle[StuScores, StuScores], rows []StuScores) error {
		fmt.Printf("%s: %d rows\n", h.FuncName(), len(rows))
		return h.Next(flow.DataReuse)
	})
	flow.MustRegister(reg, "AvgStuScore", avgStuScore)
	flow.MustRegister(reg, "PrintStuAvgScore", printStuAvgScore)

	f := reg.Define("CalStuAvgScore")
	for _, fc := range []*config.Func{
		{Name: "CountRows", Mode: config.ModeVerify},
		{Name: "AvgStuScore", Mode: config.ModeCalculate},
		{Name: "PrintStuAvgScore", Mode: config.ModeExpand},
	} {
		if err := f.Link(fc, nil); err != nil {
			fmt.Println(err)
			return
		}
	}
	_, _ = f.CommitRowBatch(context.Background(),
		StuScores{ID: 101, Score1: 100, Score2: 90, Score3: 80},
		StuScores{ID: 102, Score1: 100, Score2: 70, Score3: 60},
	)
	if err := f.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// CountRows: 2 rows
	// stuid: [101], avg score: [90]
	// stuid: [102], avg score: [76.66666666666667]
}

// JumpFunc sends a function's results back to an earlier function (or on
// to a later one): here Raise runs again until every score is at least 60.
func ExampleJumpFunc() {
	reg := flow.NewRegistry()
	flow.MustRegister(reg, "Raise", func(_ context.Context, h *flow.Handle[StuScores, StuScores], rows []StuScores) error {
		again := false
		for _, s := range rows {
			s.Score1, s.Score2, s.Score3 = s.Score1+5, s.Score2+5, s.Score3+5
			again = again || min(s.Score1, s.Score2, s.Score3) < 60
			h.CommitRow(s)
		}
		if again {
			return h.Next(flow.JumpFunc("Raise"))
		}
		return nil
	})
	flow.MustRegister(reg, "AvgStuScore", avgStuScore)
	flow.MustRegister(reg, "PrintStuAvgScore", printStuAvgScore)

	f := reg.Define("RaiseStuScore")
	for _, fc := range []*config.Func{
		{Name: "Raise", Mode: config.ModeCalculate},
		{Name: "AvgStuScore", Mode: config.ModeCalculate},
		{Name: "PrintStuAvgScore", Mode: config.ModeExpand},
	} {
		if err := f.Link(fc, nil); err != nil {
			fmt.Println(err)
			return
		}
	}
	_ = f.CommitRow(context.Background(), StuScores{ID: 103, Score1: 70, Score2: 50, Score3: 45})
	if err := f.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// stuid: [103], avg score: [70]
}
