// Command kisflow-code is KisFlow's first quick start, built in code with
// package flow: two functions registered by name, a flow that links them,
// two rows committed as JSON text, and a run that prints
//
//	stuid: [101], avg score: [90]
//	stuid: [102], avg score: [76.66666666666667]
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/flow"
)

// AvgStuScoreIn is one committed row: a student's three scores.
type AvgStuScoreIn struct {
	StuID  int `json:"stu_id"`
	Score1 int `json:"score_1"`
	Score2 int `json:"score_2"`
	Score3 int `json:"score_3"`
}

// StuAvgScore is AvgStuScore's output and PrintStuAvgScore's input.
//
// In KisFlow each function declares its own row struct (AvgStuScoreOut,
// PrintStuAvgScoreIn) and rows pass between look-alike structs through a
// JSON round trip. Here adjacent functions share one type instead: the
// output type of a function is the input type of the next, checked once
// when the flow links them, and rows pass on as values.
type StuAvgScore struct {
	StuID    int     `json:"stu_id"`
	AvgScore float64 `json:"avg_score"`
}

// AvgStuScore (Calculate) computes each student's average score.
func AvgStuScore(_ context.Context, h *flow.Handle[AvgStuScoreIn, StuAvgScore], rows []AvgStuScoreIn) error {
	for _, row := range rows {
		h.CommitRow(StuAvgScore{
			StuID:    row.StuID,
			AvgScore: float64(row.Score1+row.Score2+row.Score3) / 3,
		})
	}
	return nil
}

// PrintStuAvgScore (Expand) prints the averages; it ends the flow.
func PrintStuAvgScore(_ context.Context, _ *flow.Handle[StuAvgScore, StuAvgScore], rows []StuAvgScore) error {
	for _, row := range rows {
		fmt.Printf("stuid: [%+v], avg score: [%+v]\n", row.StuID, row.AvgScore)
	}
	return nil
}

func run(ctx context.Context) error {
	reg := flow.NewRegistry()
	if err := flow.Register(reg, "AvgStuScore", AvgStuScore); err != nil {
		return err
	}
	if err := flow.Register(reg, "PrintStuAvgScore", PrintStuAvgScore); err != nil {
		return err
	}

	// The flow and its functions' configuration, built in code.
	flow1 := reg.Define("CalStuAvgScore")
	if err := flow1.Link(&config.Func{Name: "AvgStuScore", Mode: config.ModeCalculate}, nil); err != nil {
		return err
	}
	if err := flow1.Link(&config.Func{Name: "PrintStuAvgScore", Mode: config.ModeExpand}, nil); err != nil {
		return err
	}

	// Rows committed before Run wait in memory, as in KisFlow.
	if err := flow1.CommitRow(context.Background(), `{"stu_id":101, "score_1":100, "score_2":90, "score_3":80}`); err != nil {
		return err
	}
	if err := flow1.CommitRow(context.Background(), `{"stu_id":102, "score_1":100, "score_2":70, "score_3":60}`); err != nil {
		return err
	}
	return flow1.Run(ctx)
}

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "err:", err)
		os.Exit(1)
	}
}
