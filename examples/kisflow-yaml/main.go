// Command kisflow-yaml is KisFlow's second quick start: the flow and its
// functions are configured in KisFlow's YAML files (conf/), the functions
// are registered in code, and the run prints
//
//	stuid: [101], avg score: [90]
//	stuid: [102], avg score: [76.66666666666667]
//
// The conf folder is embedded, so the command works from any directory:
//
//	go run ./examples/kisflow-yaml
//
// -conf DIR loads the YAML files of DIR instead.
package main

import (
	"context"
	"embed"
	"flag"
	"fmt"
	"os"

	"github.com/kisflow/kisflow/flow"
)

//go:embed conf
var confFS embed.FS

// AvgStuScoreIn is one committed row: a student's three scores. The
// function's source.must (conf/func-AvgStuScore.yml) makes a row without
// stu_id fail with flow.ErrBadRow.
type AvgStuScoreIn struct {
	StuID  int `json:"stu_id"`
	Score1 int `json:"score_1"`
	Score2 int `json:"score_2"`
	Score3 int `json:"score_3"`
}

// StuAvgScore is AvgStuScore's output and PrintStuAvgScore's input: one
// type shared by adjacent functions replaces KisFlow's JSON conversion
// between look-alike structs (AvgStuScoreOut, PrintStuAvgScoreIn).
type StuAvgScore struct {
	StuID    int     `json:"stu_id"`
	AvgScore float64 `json:"avg_score"`
}

// AvgStuScore (fmode Calculate) computes each student's average score.
func AvgStuScore(_ context.Context, h *flow.Handle[AvgStuScoreIn, StuAvgScore], rows []AvgStuScoreIn) error {
	for _, row := range rows {
		h.CommitRow(StuAvgScore{
			StuID:    row.StuID,
			AvgScore: float64(row.Score1+row.Score2+row.Score3) / 3,
		})
	}
	return nil
}

// PrintStuAvgScore (fmode Expand) prints the averages.
func PrintStuAvgScore(_ context.Context, _ *flow.Handle[StuAvgScore, StuAvgScore], rows []StuAvgScore) error {
	for _, row := range rows {
		fmt.Printf("stuid: [%+v], avg score: [%+v]\n", row.StuID, row.AvgScore)
	}
	return nil
}

func run(ctx context.Context, confDir string) error {
	reg := flow.NewRegistry()
	if err := flow.Register(reg, "AvgStuScore", AvgStuScore); err != nil {
		return err
	}
	if err := flow.Register(reg, "PrintStuAvgScore", PrintStuAvgScore); err != nil {
		return err
	}

	// Load the configuration: the embedded conf/, or -conf DIR.
	var err error
	if confDir != "" {
		err = reg.LoadDir(confDir)
	} else {
		err = reg.LoadFS(confFS, "conf")
	}
	if err != nil {
		return err
	}

	// Get the flow.
	flow1, err := reg.NewFlow("CalStuAvgScore")
	if err != nil {
		return err
	}

	if err := flow1.CommitRow(context.Background(), `{"stu_id":101, "score_1":100, "score_2":90, "score_3":80}`); err != nil {
		return err
	}
	if err := flow1.CommitRow(context.Background(), `{"stu_id":102, "score_1":100, "score_2":70, "score_3":60}`); err != nil {
		return err
	}
	return flow1.Run(ctx)
}

func main() {
	confDir := flag.String("conf", "", "load the YAML configuration from `DIR` instead of the embedded conf/")
	flag.Parse()
	if err := run(context.Background(), *confDir); err != nil {
		fmt.Fprintln(os.Stderr, "err:", err)
		os.Exit(1)
	}
}
