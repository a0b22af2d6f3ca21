package flow_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/flow"
)

// numbers registers Double, Square (Calculate) and Print (Expand) on int
// rows.
func numbers() *flow.Registry {
	reg := flow.NewRegistry()
	flow.MustRegister(reg, "Double", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		for _, v := range rows {
			h.CommitRow(2 * v)
		}
		return nil
	})
	flow.MustRegister(reg, "Square", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		for _, v := range rows {
			h.CommitRow(v * v)
		}
		return nil
	})
	flow.MustRegister(reg, "Print", func(_ context.Context, _ *flow.Handle[int, int], rows []int) error {
		for _, v := range rows {
			fmt.Println(v)
		}
		return nil
	})
	return reg
}

// Reconfigure changes the functions of a running flow: here Square joins
// it after Double. The rows committed before drain through the old
// functions before Reconfigure returns; the rows committed after go
// through the new ones. An invalid configuration changes nothing.
func ExampleFlow_Reconfigure() {
	reg := numbers()
	if err := reg.AddConfig(
		&config.Func{Name: "Double", Mode: config.ModeCalculate},
		&config.Func{Name: "Square", Mode: config.ModeCalculate},
		&config.Func{Name: "Print", Mode: config.ModeExpand},
	); err != nil {
		fmt.Println(err)
		return
	}
	f := reg.Define("numbers")
	_ = f.Link(reg.Config().Funcs["Double"], nil)
	_ = f.Link(reg.Config().Funcs["Print"], nil)

	ctx := context.Background()
	if err := f.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	_ = f.CommitRow(ctx, 3)
	err := f.Reconfigure(ctx, config.FlowFunc{Name: "Double"}, config.FlowFunc{Name: "Square"}, config.FlowFunc{Name: "Print"})
	fmt.Println("reconfigured:", err)

	err = f.Reconfigure(ctx, config.FlowFunc{Name: "Double"}, config.FlowFunc{Name: "Cube"}, config.FlowFunc{Name: "Print"})
	fmt.Println(errors.Is(err, flow.ErrUnknownFunction), err)

	_ = f.CommitRow(ctx, 3)
	f.Stop()
	if err := f.Wait(); err != nil {
		fmt.Println(err)
	}
	st := f.Stats() // both generations
	fmt.Println("in:", st.In, "delivered:", st.Delivered)
	// Output:
	// 6
	// reconfigured: <nil>
	// true flow numbers: flows[1]: flow: unknown function "Cube": no configuration (kistype: func)
	// 36
	// in: 2 delivered: 2
}

// Reload reads the configuration folder again and swaps the running flows
// whose configuration changed.
func ExampleRegistry_Reload() {
	dir, err := os.MkdirTemp("", "kisflow-live")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	write := func(name, yaml string) { _ = os.WriteFile(filepath.Join(dir, name), []byte(yaml), 0o600) }
	write("func-double.yml", "kistype: func\nfname: Double\nfmode: Calculate\n")
	write("func-square.yml", "kistype: func\nfname: Square\nfmode: Calculate\n")
	write("func-print.yml", "kistype: func\nfname: Print\nfmode: Expand\n")
	write("flow.yml", "kistype: flow\nstatus: 1\nflow_name: numbers\nflows:\n  - fname: Double\n  - fname: Print\n")

	reg := numbers()
	if err := reg.LoadDir(dir); err != nil {
		fmt.Println(err)
		return
	}
	f, err := reg.NewFlow("numbers")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	if err := f.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	// A malformed file: nothing changes, the error names the file.
	write("flow.yml", "kistype: flow\nstatus: [1\n")
	err = reg.Reload(ctx)
	fmt.Println(errors.Is(err, config.ErrMalformed))

	_ = f.CommitRow(ctx, 3)
	write("flow.yml", "kistype: flow\nstatus: 1\nflow_name: numbers\nflows:\n  - fname: Square\n  - fname: Print\n")
	fmt.Println("reloaded:", reg.Reload(ctx))
	_ = f.CommitRow(ctx, 3)
	f.Stop()
	if err := f.Wait(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// true
	// 6
	// reloaded: <nil>
	// 9
}

// Watch reloads the configuration when its files change; OnReload learns
// each result.
func ExampleRegistry_Watch() {
	dir, err := os.MkdirTemp("", "kisflow-watch")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	// Each file is written whole, then renamed into place, as deploy tools
	// do: the watcher never sees half a file.
	write := func(name, yaml string) {
		_ = os.WriteFile(filepath.Join(dir, name+".tmp"), []byte(yaml), 0o600)
		_ = os.Rename(filepath.Join(dir, name+".tmp"), filepath.Join(dir, name))
	}
	write("func-double.yml", "kistype: func\nfname: Double\nfmode: Calculate\n")
	write("func-square.yml", "kistype: func\nfname: Square\nfmode: Calculate\n")
	write("func-print.yml", "kistype: func\nfname: Print\nfmode: Expand\n")
	write("flow.yml", "kistype: flow\nstatus: 1\nflow_name: numbers\nflows:\n  - fname: Double\n  - fname: Print\n")

	reg := numbers()
	if err := reg.LoadDir(dir); err != nil {
		fmt.Println(err)
		return
	}
	f, err := reg.NewFlow("numbers")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	if err := f.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	reloads := make(chan error, 1)
	w, err := reg.Watch(ctx, flow.WatchConfig{OnReload: func(err error) {
		select {
		case reloads <- err:
		default: // keep the first result; never block the watcher
		}
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()

	write("flow.yml", "kistype: flow\nstatus: 1\nflow_name: numbers\nflows:\n  - fname: Double\n  - fname: Square\n  - fname: Print\n")
	fmt.Println("reloaded:", <-reloads)
	_ = f.CommitRow(ctx, 3)
	f.Stop()
	if err := f.Wait(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// reloaded: <nil>
	// 36
}
