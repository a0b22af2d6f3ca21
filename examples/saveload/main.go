// Command saveload joins flows through a connector, as KisFlow's Save and
// Load functions do: flow CalStuAvgScore computes students' average scores
// and saves them to the in-memory topic; flow ShowStuAvgScore loads them
// and prints them; flow ClassAvgScore loads them too, in a group of its
// own, and averages them (a branch: both loaders see every row).
//
// The three flows run at the same time. A loader ends when the key has
// ended (the saver's run ended, closing its writer) and it has drained
// what was saved.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/flow"
)

// Student is one committed row: a student's three scores.
type Student struct {
	StuID  int `json:"stu_id"`
	Score1 int `json:"score_1"`
	Score2 int `json:"score_2"`
	Score3 int `json:"score_3"`
}

// StuAvgScore is a student's average score: what the saver flow saves, as
// JSON, and what the loader flows load.
type StuAvgScore struct {
	StuID    int     `json:"stu_id"`
	AvgScore float64 `json:"avg_score"`
}

// conn is the connector that joins the flows: an in-memory topic key.
var conn = &config.Conn{
	Name: "AvgStuScores",
	Type: "memory",
	Key:  "stu-avg-score",
	Save: []string{"SaveStuAvgScore"},
	Load: []string{"LoadStuAvgScore"},
}

// The functions' configuration.
var (
	avgStuScore      = &config.Func{Name: "AvgStuScore", Mode: config.ModeCalculate}
	saveStuAvgScore  = &config.Func{Name: "SaveStuAvgScore", Mode: config.ModeSave, Option: config.FuncOption{Conn: conn.Name}}
	loadStuAvgScore  = &config.Func{Name: "LoadStuAvgScore", Mode: config.ModeLoad, Option: config.FuncOption{Conn: conn.Name}}
	printStuAvgScore = &config.Func{Name: "PrintStuAvgScore", Mode: config.ModeExpand}
	sumClassScore    = &config.Func{Name: "SumClassScore", Mode: config.ModeExpand}
)

// AvgStuScore (Calculate) computes each student's average score.
func AvgStuScore(_ context.Context, h *flow.Handle[Student, StuAvgScore], rows []Student) error {
	for _, row := range rows {
		h.CommitRow(StuAvgScore{
			StuID:    row.StuID,
			AvgScore: float64(row.Score1+row.Score2+row.Score3) / 3,
		})
	}
	return nil
}

// PassOn passes its rows on unchanged: as SaveStuAvgScore (Save) it hands
// them to the connector, as LoadStuAvgScore (Load) to the next function.
func PassOn(_ context.Context, h *flow.Handle[StuAvgScore, StuAvgScore], _ []StuAvgScore) error {
	return h.Next(flow.DataReuse)
}

// printer collects what PrintStuAvgScore prints, to print it in order.
type printer struct {
	mu    sync.Mutex
	lines []string
}

// PrintStuAvgScore (Expand) formats the averages loaded.
func (p *printer) PrintStuAvgScore(_ context.Context, _ *flow.Handle[StuAvgScore, StuAvgScore], rows []StuAvgScore) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, row := range rows {
		p.lines = append(p.lines, fmt.Sprintf("stuid: [%+v], avg score: [%+v]", row.StuID, row.AvgScore))
	}
	return nil
}

// class sums the averages loaded by SumClassScore.
type class struct {
	mu  sync.Mutex
	n   int
	sum float64
}

// SumClassScore (Expand) adds up the averages loaded.
func (c *class) SumClassScore(_ context.Context, _ *flow.Handle[StuAvgScore, StuAvgScore], rows []StuAvgScore) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, row := range rows {
		c.n++
		c.sum += row.AvgScore
	}
	return nil
}

// define builds a flow in code from the functions' configuration.
func define(reg *flow.Registry, name string, funcs ...*config.Func) (*flow.Flow, error) {
	f := reg.Define(name)
	for _, fc := range funcs {
		if err := f.Link(fc, nil); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func run(ctx context.Context) (err error) {
	reg := flow.NewRegistry()
	defer func() {
		if cerr := reg.Close(context.Background()); err == nil {
			err = cerr
		}
	}()
	var (
		out printer
		cls class
	)
	if err := errors.Join(
		flow.Register(reg, "AvgStuScore", AvgStuScore),
		flow.Register(reg, "SaveStuAvgScore", PassOn),
		flow.Register(reg, "LoadStuAvgScore", PassOn),
		flow.Register(reg, "PrintStuAvgScore", out.PrintStuAvgScore),
		flow.Register(reg, "SumClassScore", cls.SumClassScore),
		reg.AddConfig(conn),
	); err != nil {
		return err
	}

	// The saver: Calculate, then Save to the connector.
	saver, err := define(reg, "CalStuAvgScore", avgStuScore, saveStuAvgScore)
	if err != nil {
		return err
	}
	// Two loaders: Load from the connector, then Expand. Each reads in a
	// group named after its flow, so each sees every row saved.
	shower, err := define(reg, "ShowStuAvgScore", loadStuAvgScore, printStuAvgScore)
	if err != nil {
		return err
	}
	averager, err := define(reg, "ClassAvgScore", loadStuAvgScore, sumClassScore)
	if err != nil {
		return err
	}

	if _, err := saver.CommitRowBatch(ctx,
		`{"stu_id":101, "score_1":100, "score_2":90, "score_3":80}`,
		`{"stu_id":102, "score_1":100, "score_2":70, "score_3":60}`,
	); err != nil {
		return err
	}

	// Run the three flows at once. The loaders wait for rows until the
	// saver's run has ended and they have read everything it saved.
	g, gctx := errgroup.WithContext(ctx)
	for _, f := range []*flow.Flow{saver, shower, averager} {
		g.Go(func() error { return f.Run(gctx) })
	}
	if err := g.Wait(); err != nil {
		return err
	}

	// Rows saved by several flows, or loaded by forks sharing a group,
	// interleave: print them sorted, so the output is always the same.
	slices.Sort(out.lines)
	for _, l := range out.lines {
		fmt.Println(l)
	}
	fmt.Printf("flow %s loaded %d rows saved by flow %s\n", shower.Name(), len(out.lines), saver.Name())
	fmt.Printf("flow %s loaded %d rows: class avg score [%+v]\n", averager.Name(), cls.n, cls.sum/float64(cls.n))
	return nil
}

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "err:", err)
		os.Exit(1)
	}
}
