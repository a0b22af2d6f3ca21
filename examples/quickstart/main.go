// Command quickstart streams KisFlow's student average score example
// through the pipeline runtime: a source of students, a Calculate stage that
// averages their three scores, and a sink stage that prints the result.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// Student is one input row.
type Student struct {
	ID     int `json:"stu_id"`
	Score1 int `json:"score_1"`
	Score2 int `json:"score_2"`
	Score3 int `json:"score_3"`
}

// Average is one result row.
type Average struct {
	ID    int     `json:"stu_id"`
	Score float64 `json:"avg_score"`
}

func avgStuScore(_ context.Context, s Student) (Average, error) {
	return Average{ID: s.ID, Score: float64(s.Score1+s.Score2+s.Score3) / 3}, nil
}

func printStuAvgScore(_ context.Context, a Average) error {
	fmt.Printf("stuid: [%+v], avg score: [%+v]\n", a.ID, a.Score)
	return nil
}

func main() {
	p := pipeline.New("CalStuAvgScore")
	students := pipeline.FromSlice(p, "students", []Student{
		{ID: 101, Score1: 100, Score2: 90, Score3: 80},
		{ID: 102, Score1: 100, Score2: 70, Score3: 60},
	})
	avg := pipeline.Then(students, stage.Map("AvgStuScore", avgStuScore))
	pipeline.To(avg, stage.Sink("PrintStuAvgScore", printStuAvgScore))

	if err := p.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "err:", err)
		os.Exit(1)
	}
}
