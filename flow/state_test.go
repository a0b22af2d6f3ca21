package flow_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/flow"
	"github.com/kisflow/kisflow/stage"
)

func TestCacheExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c flow.Cache
		c.Set("short", 1, time.Second)
		c.Set("forever", 2, 0)
		v, ok := c.Get("short")
		assert.True(t, ok)
		assert.Equal(t, 1, v)
		time.Sleep(time.Second)
		_, ok = c.Get("short")
		assert.False(t, ok, "expired after its ttl")
		v, ok = c.Get("forever")
		assert.True(t, ok)
		assert.Equal(t, 2, v)
		c.Delete("forever")
		assert.Zero(t, c.Len())
	})
}

// TestStateUnderConcurrentWorkers runs a function with eight workers that
// all count into the flow's cache, metadata and function metadata; each
// fork keeps its own.
func TestStateUnderConcurrentWorkers(t *testing.T) {
	reg := flow.NewRegistry()
	var mu sync.Mutex // the read-modify-write of a count is the function's business
	require.NoError(t, flow.Register(reg, "count", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		mu.Lock()
		defer mu.Unlock()
		n, _ := h.Cache().Get("rows")
		prev, _ := n.(int)
		h.Cache().Set("rows", prev+len(rows), 0)
		m, _ := h.Meta().Get("rows").(int)
		h.Meta().Set("rows", m+len(rows))
		fm, _ := h.FuncMeta().Get("calls").(int)
		h.FuncMeta().Set("calls", fm+1)
		return nil
	}, stage.Concurrency(8)))
	require.NoError(t, reg.AddConfig(
		&config.Func{Name: "count", Mode: config.ModeExpand},
		&config.Flow{Name: "f", Status: 1, Funcs: []config.FlowFunc{{Name: "count"}}},
	))
	f, err := reg.NewFlow("f")
	require.NoError(t, err)
	g, err := f.Fork()
	require.NoError(t, err)
	rows := make([]any, 5000)
	for i := range rows {
		rows[i] = i
	}
	commitRows(t, f, rows...)
	commitRows(t, g, rows[:10]...)
	require.NoError(t, f.Run(context.Background()))
	require.NoError(t, g.Run(context.Background()))

	for _, c := range []struct {
		fl   *flow.Flow
		rows int
	}{{f, 5000}, {g, 10}} {
		n, ok := c.fl.Cache().Get("rows")
		require.True(t, ok)
		assert.Equal(t, c.rows, n, "every worker's count landed; a fork keeps its own")
		assert.Equal(t, c.rows, c.fl.Meta().Get("rows"))
	}
	assert.EqualValues(t, 5000, nodeStats(t, f.Pipeline().Stats(), "count").In)
}
