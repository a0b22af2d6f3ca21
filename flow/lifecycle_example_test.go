package flow_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"sync"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/flow"
	"github.com/kisflow/kisflow/stage"
)

// Register adds a function to a registry under a name; its mode comes from
// the configuration that names it. A name is registered once.
func ExampleRegister() {
	reg := flow.NewRegistry()
	double := func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		for _, v := range rows {
			h.CommitRow(2 * v)
		}
		return nil
	}
	fmt.Println(flow.Register(reg, "Double", double, stage.Concurrency(2)))
	err := flow.Register(reg, "Double", double)
	fmt.Println(err, errors.Is(err, config.ErrDuplicate))
	// Output:
	// <nil>
	// duplicate name: function "Double" registered twice true
}

// LoadDir reads KisFlow's YAML files from a directory; NewFlow makes an
// instance of a flow they configure.
func ExampleRegistry_LoadDir() {
	dir, err := os.MkdirTemp("", "kisflow-conf")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	_ = os.WriteFile(filepath.Join(dir, "flow.yml"), []byte("kistype: flow\nstatus: 1\nflow_name: Scores\nflows:\n  - fname: AvgStuScore\n  - fname: PrintStuAvgScore\n"), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "func-avg.yml"), []byte("kistype: func\nfname: AvgStuScore\nfmode: Calculate\n"), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "func-print.yml"), []byte("kistype: func\nfname: PrintStuAvgScore\nfmode: Expand\n"), 0o600)

	reg := flow.NewRegistry()
	flow.MustRegister(reg, "AvgStuScore", avgStuScore)
	flow.MustRegister(reg, "PrintStuAvgScore", printStuAvgScore)
	if err := reg.LoadDir(dir); err != nil {
		fmt.Println(err)
		return
	}
	f, err := reg.NewFlow("Scores")
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = f.CommitRow(context.Background(), `{"stu_id":101, "score_1":100, "score_2":90, "score_3":80}`)
	if err := f.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output: stuid: [101], avg score: [90]
}

// NewFlow makes independent instances of a configured flow: each has its
// own held rows, runs, cache and metadata.
func ExampleRegistry_NewFlow() {
	reg := flow.NewRegistry()
	flow.MustRegister(reg, "Count", func(_ context.Context, h *flow.Handle[string, string], rows []string) error {
		n, _ := h.Cache().Get("n")
		c, _ := n.(int)
		h.Cache().Set("n", c+len(rows), 0)
		return nil
	})
	if err := reg.AddConfig(
		&config.Func{Name: "Count", Mode: config.ModeExpand},
		&config.Flow{Name: "Counter", Status: config.StatusEnabled, Funcs: []config.FlowFunc{{Name: "Count"}}},
	); err != nil {
		fmt.Println(err)
		return
	}
	a, _ := reg.NewFlow("Counter")
	b, _ := reg.NewFlow("Counter")
	_, _ = a.CommitRowBatch(context.Background(), "x", "y")
	_ = b.CommitRow(context.Background(), "z")
	for _, f := range []*flow.Flow{a, b} {
		if err := f.Run(context.Background()); err != nil {
			fmt.Println(err)
		}
		n, _ := f.Cache().Get("n")
		fmt.Println(f.Name(), n)
	}
	_, err := reg.NewFlow("Missing")
	fmt.Println(errors.Is(err, flow.ErrUnknownFlow))
	// Output:
	// Counter 2
	// Counter 1
	// true
}

// CommitRow takes values of the first function's input type or JSON text;
// they wait until Run takes them, and a row that does not decode is refused.
func ExampleFlow_CommitRow() {
	reg := flow.NewRegistry()
	flow.MustRegister(reg, "AvgStuScore", avgStuScore)
	flow.MustRegister(reg, "PrintStuAvgScore", printStuAvgScore)
	f := reg.Define("CalStuAvgScore")
	_ = f.Link(&config.Func{Name: "AvgStuScore", Mode: config.ModeCalculate}, nil)
	_ = f.Link(&config.Func{Name: "PrintStuAvgScore", Mode: config.ModeExpand}, nil)

	ctx := context.Background()
	_ = f.CommitRow(ctx, StuScores{ID: 101, Score1: 100, Score2: 90, Score3: 80})
	_ = f.CommitRow(ctx, `{"stu_id":102, "score_1":60, "score_2":60, "score_3":60}`)
	err := f.CommitRow(ctx, `{"stu_id":"oops"`)
	fmt.Println(errors.Is(err, flow.ErrBadRow))
	if err := f.Run(ctx); err != nil {
		fmt.Println(err)
	}
	st := f.Pipeline().Stats()
	fmt.Printf("in %d, delivered %d, failed %d\n", st.In, st.Delivered, st.Failed)
	// Output:
	// true
	// stuid: [101], avg score: [90]
	// stuid: [102], avg score: [60]
	// in 3, delivered 2, failed 1
}

// Abort ends a streaming run from inside: the function that sees "quit"
// stops the flow, its rows in flight drain, and Wait returns without Stop.
func ExampleAction_abort() {
	reg := flow.NewRegistry()
	flow.MustRegister(reg, "Commands", func(_ context.Context, h *flow.Handle[string, string], rows []string) error {
		for _, cmd := range rows {
			if cmd == "quit" {
				return h.Next(flow.Abort)
			}
			fmt.Println("run", cmd)
		}
		return nil
	})
	f := reg.Define("Shell")
	_ = f.Link(&config.Func{Name: "Commands", Mode: config.ModeExpand}, nil)
	ctx := context.Background()
	if err := f.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	_, _ = f.CommitRowBatch(ctx, "ls", "quit")
	fmt.Println(f.Wait())
	// Output:
	// run ls
	// <nil>
}

// ForceEntryNext calls the next function even when this one committed
// nothing, as KisFlow does: here to report that every row was filtered.
func ExampleAction_forceEntryNext() {
	reg := flow.NewRegistry()
	flow.MustRegister(reg, "Adults", func(_ context.Context, h *flow.Handle[int, int], ages []int) error {
		for _, a := range ages {
			if a >= 18 {
				h.CommitRow(a)
			}
		}
		return h.Next(flow.ForceEntryNext)
	})
	var mu sync.Mutex
	empty := 0
	flow.MustRegister(reg, "Report", func(_ context.Context, _ *flow.Handle[int, int], ages []int) error {
		mu.Lock()
		defer mu.Unlock()
		if len(ages) == 0 {
			empty++
		}
		return nil
	})
	f := reg.Define("Ages")
	_ = f.Link(&config.Func{Name: "Adults", Mode: config.ModeVerify}, nil)
	_ = f.Link(&config.Func{Name: "Report", Mode: config.ModeExpand}, nil)
	_, _ = f.CommitRowBatch(context.Background(), 7, 12, 15)
	if err := f.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println("Report called with no rows:", empty > 0)
	// Output: Report called with no rows: true
}

// FailRow fails one row of a chunk alone; with the Skip policy the rest of
// the chunk goes on.
func ExampleHandle_FailRow() {
	reg := flow.NewRegistry()
	flow.MustRegister(reg, "Check", func(_ context.Context, h *flow.Handle[StuScores, StuScores], rows []StuScores) error {
		for _, s := range rows {
			if s.Score1 < 0 || s.Score2 < 0 || s.Score3 < 0 {
				h.FailRow(s, fmt.Errorf("student %d: negative score", s.ID))
				continue
			}
			h.CommitRow(s)
		}
		return nil
	}, stage.OnError(stage.Skip))
	flow.MustRegister(reg, "AvgStuScore", avgStuScore)
	flow.MustRegister(reg, "PrintStuAvgScore", printStuAvgScore)
	f := reg.Define("CheckedAvg")
	_ = f.Link(&config.Func{Name: "Check", Mode: config.ModeVerify}, nil)
	_ = f.Link(&config.Func{Name: "AvgStuScore", Mode: config.ModeCalculate}, nil)
	_ = f.Link(&config.Func{Name: "PrintStuAvgScore", Mode: config.ModeExpand}, nil)
	_, _ = f.CommitRowBatch(context.Background(),
		StuScores{ID: 101, Score1: 100, Score2: 90, Score3: 80},
		StuScores{ID: 102, Score1: -1, Score2: 70, Score3: 60},
	)
	if err := f.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	st := f.Pipeline().Stats()
	fmt.Printf("delivered %d, failed %d\n", st.Delivered, st.Failed)
	// Output:
	// stuid: [101], avg score: [90]
	// delivered 1, failed 1
}

// A streaming flow: Start it, commit rows while it runs, and Shutdown to
// stop taking rows and wait for those in flight.
func ExampleFlow_Shutdown() {
	reg := flow.NewRegistry()
	var mu sync.Mutex
	var seen []string
	flow.MustRegister(reg, "Log", func(_ context.Context, _ *flow.Handle[string, string], rows []string) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, rows...)
		return nil
	})
	f := reg.Define("Events")
	_ = f.Link(&config.Func{Name: "Log", Mode: config.ModeExpand}, nil)
	ctx := context.Background()
	if err := f.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range []string{"login", "view", "logout"} {
		if err := f.CommitRow(ctx, e); err != nil {
			fmt.Println(err)
		}
	}
	fmt.Println(f.Shutdown(ctx))
	fmt.Println(seen)
	// Output:
	// <nil>
	// [login view logout]
}

// Save and Load join two flows through a connector, here the in-memory
// topic: the saver writes what its Save function commits to the key, the
// loader reads it until the saver's run has ended and it has drained.
func Example_saveLoad() {
	reg := flow.NewRegistry()
	defer reg.Close(context.Background())
	if err := reg.AddConfig(
		&config.Conn{Name: "Averages", Type: "memory", Key: "stu-avg-score"},
		&config.Func{Name: "AvgStuScore", Mode: config.ModeCalculate},
		&config.Func{Name: "SaveAvg", Mode: config.ModeSave, Option: config.FuncOption{Conn: "Averages"}},
		&config.Func{Name: "LoadAvg", Mode: config.ModeLoad, Option: config.FuncOption{Conn: "Averages"}},
		&config.Func{Name: "PrintStuAvgScore", Mode: config.ModeExpand},
	); err != nil {
		fmt.Println(err)
		return
	}
	passOn := func(_ context.Context, h *flow.Handle[StuAvgScore, StuAvgScore], _ []StuAvgScore) error {
		return h.Next(flow.DataReuse)
	}
	flow.MustRegister(reg, "AvgStuScore", avgStuScore)
	flow.MustRegister(reg, "SaveAvg", passOn)
	flow.MustRegister(reg, "LoadAvg", passOn)
	flow.MustRegister(reg, "PrintStuAvgScore", printStuAvgScore)

	saver, loader := reg.Define("Saver"), reg.Define("Loader")
	for _, link := range []struct {
		f     *flow.Flow
		fname string
	}{{saver, "AvgStuScore"}, {saver, "SaveAvg"}, {loader, "LoadAvg"}, {loader, "PrintStuAvgScore"}} {
		if err := link.f.Link(reg.Config().Funcs[link.fname], nil); err != nil {
			fmt.Println(err)
			return
		}
	}
	_ = saver.CommitRow(context.Background(), StuScores{ID: 101, Score1: 100, Score2: 90, Score3: 80})
	ctx := context.Background()
	if err := loader.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	serr := saver.Run(ctx)
	fmt.Println(serr, loader.Wait())
	// Output:
	// stuid: [101], avg score: [90]
	// <nil> <nil>
}
