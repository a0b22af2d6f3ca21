package kafka

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/stream"
	"github.com/kisflow/kisflow/flow"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

var orderCodec = stream.JSON[Order]()

// produce saves rows to w through a pipeline: FromSlice -> Save, keyed by
// shop.
func produce(tb testing.TB, w connectors.Writer, rows []Order) {
	tb.Helper()
	p := pipeline.New("producer")
	src := pipeline.FromSlice(p, "orders", rows)
	pipeline.To(src, stream.Save("save-orders", w, orderCodec, func(o Order) string { return o.Shop }))
	require.NoError(tb, p.Run(context.Background()))
}

// startWorker starts a pipeline Load -> Map -> Sink that records every
// row it handles in tl under its name.
func startWorker(tb testing.TB, name string, r connectors.Reader, tl *tally) *pipeline.Pipeline {
	tb.Helper()
	p := pipeline.New(name)
	rows := stream.Load(p, "load-orders", r, orderCodec)
	doubled := pipeline.Then(rows, stage.Map("double", func(_ context.Context, o Order) (Order, error) {
		o.Amount *= 2
		return o, nil
	}))
	pipeline.To(doubled, stage.Sink("record", func(_ context.Context, o Order) error {
		if o.Amount != o.ID*20 {
			return fmt.Errorf("row %d: amount %d, want %d", o.ID, o.Amount, o.ID*20)
		}
		tl.add(name, o.ID)
		return nil
	}))
	require.NoError(tb, p.Start(tb.Context()))
	return p
}

func TestSaveLoadSharedGroup(t *testing.T) {
	addrs := startCluster(t, 6, "orders")
	adm := admin(t, addrs)
	const n = 3000
	tl := newTally(n)
	var workers []*pipeline.Pipeline
	for i := range 2 {
		name := fmt.Sprintf("worker-%d", i)
		c := newConnector(t, name, addrs, "orders", nil)
		workers = append(workers, startWorker(t, name, newReader(t, c, "orders", connectors.ReadOptions{Group: "billing", FromStart: true}), tl))
	}
	prod := newConnector(t, "producer", addrs, "orders", nil)
	produce(t, newWriter(t, prod, "orders"), orders(0, n))
	tl.wait(t)
	for _, p := range workers {
		p.Stop()
	}
	for _, p := range workers {
		require.NoError(t, p.Wait())
	}
	seen, by := tl.snapshot()
	require.Len(t, seen, n)
	t.Logf("rows per worker %v, duplicates %d", by, duplicates(seen))
	// Stopped flows acknowledged everything they read: the readers commit
	// it all.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, endOffsets(t, adm, "orders"), committed(t, adm, "billing", "orders"))
	}, deadline, 10*time.Millisecond)
}

// TestYAMLFlowSaveLoad configures, in KisFlow's YAML, a conn of type
// kafka, a flow that saves through it and one that loads from it, and
// runs both through the flow package.
func TestYAMLFlowSaveLoad(t *testing.T) {
	addrs := startCluster(t, 4, "averages")
	dir := t.TempDir()
	files := map[string]string{
		"conn.yml": "kistype: conn\ncname: Averages\ntype: kafka\naddrs: '" + addrs + "'\nkey: averages\n" +
			"params:\n  group: printers\n  commit_interval: 20ms\n  fetch_max_wait: 50ms\n  balancer: cooperative-sticky\n" +
			"save: [SaveAvg]\nload: [LoadAvg]\n",
		"func-save.yml":  "kistype: func\nfname: SaveAvg\nfmode: Save\noption:\n  cname: Averages\n",
		"func-load.yml":  "kistype: func\nfname: LoadAvg\nfmode: Load\noption:\n  cname: Averages\n",
		"func-print.yml": "kistype: func\nfname: Print\nfmode: Expand\n",
		"flow-save.yml":  "kistype: flow\nstatus: 1\nflow_name: Saver\nflows:\n  - fname: SaveAvg\n",
		"flow-load.yml":  "kistype: flow\nstatus: 1\nflow_name: Loader\nflows:\n  - fname: LoadAvg\n  - fname: Print\n",
	}
	for name, text := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600))
	}
	types := connectors.NewRegistry()
	require.NoError(t, Register(types))
	reg := flow.NewRegistry(flow.Connectors(types))
	defer reg.Close(context.Background())
	passOn := func(_ context.Context, h *flow.Handle[Order, Order], _ []Order) error { return h.Next(flow.DataReuse) }
	flow.MustRegister(reg, "SaveAvg", passOn)
	flow.MustRegister(reg, "LoadAvg", passOn)
	var (
		mu  sync.Mutex
		got []int
		all = make(chan struct{})
	)
	const n = 50
	flow.MustRegister(reg, "Print", func(_ context.Context, _ *flow.Handle[Order, Order], rows []Order) error {
		mu.Lock()
		defer mu.Unlock()
		for _, o := range rows {
			got = append(got, o.ID)
		}
		if len(got) == n {
			close(all)
		}
		return nil
	})
	require.NoError(t, reg.LoadDir(dir))
	require.Equal(t, "kafka", reg.Config().Conns["Averages"].Type)

	saver, err := reg.NewFlow("Saver")
	require.NoError(t, err)
	loader, err := reg.NewFlow("Loader")
	require.NoError(t, err)
	for _, o := range orders(0, n) {
		require.NoError(t, saver.CommitRow(t.Context(), o))
	}
	require.NoError(t, loader.Start(t.Context()))
	require.NoError(t, saver.Run(t.Context()))
	select {
	case <-all:
	case <-time.After(deadline):
		t.Fatal("the loader did not get every row")
	}
	loader.Stop() // a broker never ends: stop the loader once it has its rows
	require.NoError(t, loader.Wait())
	slices.Sort(got)
	require.Equal(t, n, len(slices.Compact(got)))

	// The group came from the conn's params; the commits are the broker's.
	adm := admin(t, addrs)
	require.NoError(t, reg.Close(context.Background()))
	require.Equal(t, endOffsets(t, adm, "averages"), committed(t, adm, "printers", "averages"))
}

func TestYAMLBadParamNamesTheConnector(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "conn.yml"),
		[]byte("kistype: conn\ncname: Orders\ntype: kafka\naddrs: 127.0.0.1:1\nkey: orders\nparams:\n  revoke_wait: soon\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "func.yml"),
		[]byte("kistype: func\nfname: SaveOrder\nfmode: Save\noption:\n  cname: Orders\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "flow.yml"),
		[]byte("kistype: flow\nstatus: 1\nflow_name: Saver\nflows:\n  - fname: SaveOrder\n"), 0o600))
	types := connectors.NewRegistry()
	require.NoError(t, Register(types))
	reg := flow.NewRegistry(flow.Connectors(types))
	defer reg.Close(context.Background())
	flow.MustRegister(reg, "SaveOrder", func(_ context.Context, h *flow.Handle[Order, Order], _ []Order) error { return h.Next(flow.DataReuse) })
	require.NoError(t, reg.LoadDir(dir))
	f, err := reg.NewFlow("Saver")
	require.NoError(t, err)
	require.NoError(t, f.CommitRow(t.Context(), Order{ID: 1}))
	err = f.Run(t.Context())
	require.ErrorIs(t, err, flow.ErrConnector)
	require.ErrorIs(t, err, connectors.ErrConfig)
	require.ErrorContains(t, err, `kafka connector "Orders": param revoke_wait="soon"`)
	t.Logf("Run: %v", err)
	require.True(t, strings.Contains(err.Error(), "Saver"), "the flow is named: %v", err)
}
