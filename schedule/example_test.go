package schedule_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/flow"
	"github.com/kisflow/kisflow/schedule"
)

// A task running a flow on demand: the Feed commits its rows, OnRunEnd
// gets the record of the run.
func ExampleScheduler() {
	reg := flow.NewRegistry()
	flow.MustRegister(reg, "Square", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		for _, r := range rows {
			h.CommitRow(r * r)
		}
		return nil
	})
	flow.MustRegister(reg, "Print", func(_ context.Context, _ *flow.Handle[int, int], rows []int) error {
		fmt.Println("squares:", rows)
		return nil
	})
	if err := reg.AddConfig(
		&config.Func{Name: "Square", Mode: config.ModeCalculate},
		&config.Func{Name: "Print", Mode: config.ModeExpand},
		&config.Flow{Name: "Squares", Status: config.StatusEnabled, Funcs: []config.FlowFunc{{Name: "Square"}, {Name: "Print"}}},
	); err != nil {
		fmt.Println(err)
		return
	}

	done := make(chan schedule.Run, 1)
	s := schedule.New(reg, schedule.OnRunEnd(func(r schedule.Run) { done <- r }))
	err := s.Add(schedule.Task{
		Name: "squares", Flow: "Squares", // no Trigger: on demand
		Feed: func(ctx context.Context, f *flow.Flow, _ *slog.Logger) error {
			_, err := f.CommitRowBatch(ctx, 1, 2, 3)
			return err
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := s.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := s.Trigger("squares"); err != nil {
		fmt.Println(err)
	}
	r := <-done
	fmt.Println(r.Task, r.Trigger, r.Outcome, "rows in", r.RowsIn, "out", r.RowsOut)
	if err := s.Close(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// squares: [1 4 9]
	// squares manual ok rows in 3 out 3
}

// Triggers: a cron expression with seconds in a time zone, an interval, a
// one-shot time.
func ExampleTrigger() {
	for _, t := range []schedule.Trigger{
		{Cron: "CRON_TZ=Asia/Shanghai 0 30 8 * * MON-FRI"},
		{Every: 90e9},
		{},
	} {
		fmt.Println(t.Kind(), "|", t)
	}
	// Output:
	// cron | cron CRON_TZ=Asia/Shanghai 0 30 8 * * MON-FRI
	// every | every 1m30s
	// manual | on demand
}

// The in-process coordinator: one claim of a firing wins; once its lease
// expired another executor claims it with a greater fencing token, and the
// old holder can no longer complete it.
func ExampleMemory() {
	ctx := context.Background()
	c := newClock()
	m := schedule.NewMemory(c)
	defer m.Close()
	f := schedule.Firing{Scene: "default", Task: "report", Due: t0, ID: "report@" + t0.Format(time.RFC3339)}

	a, _ := m.Claim(ctx, f, "a", 10*time.Second)
	_, err := m.Claim(ctx, f, "b", 10*time.Second)
	fmt.Println("a holds token", a.Token, "| b:", errors.Is(err, schedule.ErrClaimed))

	c.Advance(11 * time.Second) // a stalls past its lease
	b, _ := m.Claim(ctx, f, "b", 10*time.Second)
	fmt.Println("b holds token", b.Token, "| a completes:", m.Complete(ctx, a))
	fmt.Println("b completes:", m.Complete(ctx, b))
	_, err = m.Claim(ctx, f, "c", 10*time.Second)
	fmt.Println("c:", errors.Is(err, schedule.ErrDone))
	// Output:
	// a holds token 1 | b: true
	// b holds token 2 | a completes: schedule: lease lost: report@2026-11-30T12:00:00Z token 1
	// b completes: <nil>
	// c: true
}

// A report over finished runs: success ratio, duration percentiles, rows
// per run.
func ExampleSummarize() {
	var runs []schedule.Run
	for i, d := range []time.Duration{3, 1, 2, 9} {
		outcome := schedule.OutcomeOK
		if i == 3 {
			outcome = schedule.OutcomeTimeout
		}
		start := t0.Add(time.Duration(i) * time.Minute)
		runs = append(runs, schedule.Run{Task: "report", Start: start, End: start.Add(d * time.Second),
			Outcome: outcome, RowsIn: 100, RowsOut: 98, RowsFailed: 2})
	}
	rep := schedule.Summarize("report", runs)
	fmt.Printf("%d runs, %.0f%% ok, p50 %s, p95 %s, %.0f rows in per run\n",
		rep.Runs, 100*rep.SuccessRatio, rep.P50, rep.P95, rep.RowsInPerRun)
	// Output:
	// 4 runs, 75% ok, p50 2s, p95 9s, 100 rows in per run
}
