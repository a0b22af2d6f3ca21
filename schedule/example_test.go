package schedule_test

import (
	"context"
	"fmt"
	"log/slog"

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
