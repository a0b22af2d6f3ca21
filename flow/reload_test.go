package flow_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/flow"
)

// writeFile replaces the file at path with data in one step (a rename),
// as deploy tools do, so a watcher never reads it half written.
func writeFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(data), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

// flowYAML returns a flow document running funcs.
func flowYAML(name string, status int, funcs ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "kistype: flow\nstatus: %d\nflow_name: %s\nflows:\n", status, name)
	for _, fn := range funcs {
		if name, params, ok := strings.Cut(fn, "?"); ok {
			k, v, _ := strings.Cut(params, "=")
			fmt.Fprintf(&b, "  - fname: %s\n    params: {%s: %q}\n", name, k, v)
			continue
		}
		fmt.Fprintf(&b, "  - fname: %s\n", fn)
	}
	return b.String()
}

// confDir writes the configuration of liveFuncs' functions and of flows
// A and B (Pass then Sink) into a new folder, and returns it.
func confDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "func"), 0o700))
	for _, fc := range liveFuncConfigs() {
		data, err := config.Marshal(fc)
		require.NoError(t, err)
		writeFile(t, filepath.Join(dir, "func", "func-"+fc.Name+".yml"), string(data))
	}
	writeFile(t, filepath.Join(dir, "flow-A.yml"), flowYAML("A", 1, "Pass", "Sink"))
	writeFile(t, filepath.Join(dir, "flow-B.yml"), flowYAML("B", 1, "Pass", "Sink"))
	return dir
}

func funcsOf(t *testing.T, f *flow.Flow) []string {
	t.Helper()
	fc, err := f.Config()
	require.NoError(t, err)
	var names []string
	for _, ff := range fc.Funcs {
		names = append(names, ff.Name)
	}
	return names
}

// Reload swaps the running flows whose files changed, leaves the others
// alone, refuses invalid configurations with errors naming file and
// field, keeps a flow whose file was removed, and stops a disabled one.
func TestReload(t *testing.T) {
	var l ledger
	dir := confDir(t)
	reg := liveFuncs(t, flow.NewRegistry(), &l, newGate(), 2)
	require.NoError(t, reg.LoadDir(dir))
	a, err := reg.NewFlow("A")
	require.NoError(t, err)
	b, err := reg.NewFlow("B")
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	require.NoError(t, b.Start(context.Background()))
	pa, pb := startProducers(a, 1_000_000), startProducers(b, 2_000_000)
	ctx := context.Background()
	flowA := filepath.Join(dir, "flow-A.yml")

	// A changes, B does not.
	pa.await(20)
	bp := b.Pipeline()
	writeFile(t, flowA, flowYAML("A", 1, "Odd", "Sink"))
	require.NoError(t, reg.Reload(ctx))
	assert.Equal(t, []string{"Odd", "Sink"}, funcsOf(t, a))
	assert.Same(t, bp, b.Pipeline(), "B did not change: it was not swapped")

	// Invalid configurations change nothing.
	ap := a.Pipeline()
	for _, tc := range []struct {
		name, file, data string
		target           error
		text             []string
	}{
		{"malformed YAML", flowA, "kistype: flow\nflow_name: [A\n", config.ErrMalformed, []string{flowA}},
		{"unknown reference", flowA, flowYAML("A", 1, "Pass", "Ghost", "Sink"), config.ErrUnknownReference,
			[]string{flowA, "flows[1].fname", `"Ghost"`}},
		{"not registered", filepath.Join(dir, "func", "func-Ghost.yml"), "kistype: func\nfname: Ghost\nfmode: Calculate\n", flow.ErrUnknownFunction,
			[]string{flowA, "flows[1]", `"Ghost"`, "not registered"}},
		{"type mismatch", flowA, flowYAML("A", 1, "Pass", "Str", "Sink"), flow.ErrTypeMismatch,
			[]string{flowA, "flows[1]", "function Str (input string) cannot follow function Pass (output int)"}},
		{"bad mode", filepath.Join(dir, "func", "func-Pass.yml"), "kistype: func\nfname: Pass\nfmode: Sideways\n", config.ErrUnknownMode,
			[]string{filepath.Join(dir, "func", "func-Pass.yml"), "fmode"}},
	} {
		pa.await(20)
		old, err := os.ReadFile(tc.file)
		if err != nil {
			old = nil
		}
		writeFile(t, tc.file, tc.data)
		err = reg.Reload(ctx)
		require.Error(t, err, tc.name)
		assert.ErrorIs(t, err, tc.target, tc.name)
		for _, s := range tc.text {
			assert.Contains(t, err.Error(), s, tc.name)
		}
		assert.Same(t, ap, a.Pipeline(), "%s: A runs on", tc.name)
		assert.Same(t, bp, b.Pipeline(), "%s: B runs on", tc.name)
		assert.Equal(t, []string{"Odd", "Sink"}, funcsOf(t, a), tc.name)
		if tc.name == "unknown reference" {
			continue // the next case adds the function
		}
		if old == nil {
			require.NoError(t, os.Remove(tc.file))
		} else {
			writeFile(t, tc.file, string(old))
		}
		if tc.name == "not registered" {
			writeFile(t, flowA, flowYAML("A", 1, "Odd", "Sink"))
		}
	}
	require.NoError(t, reg.Reload(ctx), "the files are as they were")
	assert.Same(t, ap, a.Pipeline(), "nothing changed: nothing swapped")

	// A function's document changes: the flows that name it swap.
	writeFile(t, flowA, flowYAML("A", 1, "Tag?gen=x", "Sink"))
	require.NoError(t, reg.Reload(ctx))
	ap = a.Pipeline()
	pa.await(20)
	writeFile(t, filepath.Join(dir, "func", "func-Tag.yml"), "kistype: func\nfname: Tag\nfmode: Calculate\noption:\n  default_params: {gen: '1', other: '2'}\n")
	require.NoError(t, reg.Reload(ctx))
	assert.NotSame(t, ap, a.Pipeline(), "A names Tag: swapped")
	assert.Same(t, bp, b.Pipeline(), "B does not")

	// B's file is removed: B runs on; the registry no longer has it.
	require.NoError(t, os.Remove(filepath.Join(dir, "flow-B.yml")))
	require.NoError(t, reg.Reload(ctx))
	assert.Same(t, bp, b.Pipeline())
	_, err = reg.NewFlow("B")
	require.ErrorIs(t, err, flow.ErrUnknownFlow)
	pb.await(20)

	// A is disabled: it stops, and drains.
	committedA := pa.finish(t)
	writeFile(t, flowA, flowYAML("A", 0, "Tag", "Sink"))
	require.NoError(t, reg.Reload(ctx))
	require.NoError(t, a.Wait())

	committedB := pb.finish(t)
	b.Stop()
	require.NoError(t, b.Wait())
	committed := map[int]bool{}
	for id := range committedA {
		committed[id] = true
	}
	for id := range committedB {
		committed[id] = true
	}
	l.check(t, committed)
	stA, stB := a.Stats(), b.Stats()
	assert.EqualValues(t, len(committedA), stA.In)
	assert.EqualValues(t, len(committedB), stB.In)
	for _, st := range []struct{ in, out int64 }{
		{stA.In, stA.Delivered + stA.Filtered + stA.Failed + stA.Dropped + stA.DeadLettered + stA.Abandoned},
		{stB.In, stB.Delivered + stB.Filtered + stB.Failed + stB.Dropped + stB.DeadLettered + stB.Abandoned},
	} {
		assert.Equal(t, st.in, st.out, "the accounting rule")
	}
	assert.Zero(t, stA.Abandoned+stB.Abandoned)
}

// A flow that is not running takes a reloaded configuration at its next
// run, with the rows it holds.
func TestReloadIdleFlow(t *testing.T) {
	var l ledger
	dir := confDir(t)
	reg := liveFuncs(t, flow.NewRegistry(), &l, newGate(), 1)
	require.NoError(t, reg.LoadDir(dir))
	a, err := reg.NewFlow("A")
	require.NoError(t, err)
	commitRows(t, a, 1, 2, 3)
	writeFile(t, filepath.Join(dir, "flow-A.yml"), flowYAML("A", 1, "Odd", "Sink"))
	require.NoError(t, reg.Reload(context.Background()))
	require.NoError(t, a.Run(context.Background()))
	l.check(t, map[int]bool{1: true, 2: true, 3: true})
	assert.Equal(t, []string{"filtered"}, l.seen[2])
}

func TestReloadWithoutFolder(t *testing.T) {
	reg := flow.NewRegistry()
	require.ErrorContains(t, reg.Reload(context.Background()), "no configuration was loaded")
	_, err := reg.Watch(context.Background(), flow.WatchConfig{})
	require.ErrorContains(t, err, "no folder was loaded")
}

// awaitReload receives the watcher's reports until ok holds after one,
// and returns the errors reported before.
func awaitReload(t *testing.T, reports <-chan error, ok func(err error) bool) {
	t.Helper()
	// Not a timing assertion: a bound that turns a hang into a failure.
	limit := time.NewTimer(2 * time.Minute)
	defer limit.Stop()
	for {
		select {
		case err := <-reports:
			if ok(err) {
				return
			}
		case <-limit.C:
			t.Fatal("no reload reported")
		}
	}
}

// The watcher reloads when files change: a changed flow swaps, an invalid
// file is reported (naming it) and changes nothing, a new folder is
// watched.
func TestWatch(t *testing.T) {
	var l ledger
	dir := confDir(t)
	reg := liveFuncs(t, flow.NewRegistry(), &l, newGate(), 2)
	require.NoError(t, reg.LoadDir(dir))
	a, err := reg.NewFlow("A")
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	p := startProducers(a, 1)
	reports := make(chan error, 64)
	w, err := reg.Watch(context.Background(), flow.WatchConfig{Debounce: 20 * time.Millisecond, OnReload: func(err error) { reports <- err }})
	require.NoError(t, err)
	flowA := filepath.Join(dir, "flow-A.yml")

	p.await(20)
	writeFile(t, flowA, flowYAML("A", 1, "Odd", "Sink"))
	awaitReload(t, reports, func(err error) bool {
		require.NoError(t, err)
		return funcsOf(t, a)[0] == "Odd"
	})

	ap := a.Pipeline()
	p.await(20)
	writeFile(t, flowA, "kistype: flow\nflow_name: [A\n")
	awaitReload(t, reports, func(err error) bool {
		require.Error(t, err)
		assert.ErrorIs(t, err, config.ErrMalformed)
		assert.Contains(t, err.Error(), flowA)
		return true
	})
	assert.Same(t, ap, a.Pipeline(), "the flow runs on")

	// A new folder with a new flow, and A back to valid.
	sub := filepath.Join(dir, "more")
	require.NoError(t, os.Mkdir(sub, 0o700))
	writeFile(t, filepath.Join(sub, "flow-C.yml"), flowYAML("C", 1, "Pass", "Sink"))
	writeFile(t, flowA, flowYAML("A", 1, "Sevens", "Sink"))
	awaitReload(t, reports, func(err error) bool {
		if err != nil {
			return false // a reload may run between the writes
		}
		_, err = reg.NewFlow("C")
		return err == nil && funcsOf(t, a)[0] == "Sevens"
	})
	require.NoError(t, w.Close())
	require.NoError(t, w.Close(), "a second Close waits likewise")

	p.await(20)
	committed := p.finish(t)
	a.Stop()
	require.NoError(t, a.Wait())
	l.check(t, committed)
	checkTotals(t, a.Stats(), len(committed), &l)
}

// The watcher ends with the ctx given to Watch; Close then only waits.
func TestWatchEndsWithContext(t *testing.T) {
	reg := flow.NewRegistry()
	require.NoError(t, reg.LoadDir(confDir(t)))
	ctx, cancel := context.WithCancel(context.Background())
	w, err := reg.Watch(ctx, flow.WatchConfig{})
	require.NoError(t, err)
	cancel()
	require.NoError(t, w.Close())
}
