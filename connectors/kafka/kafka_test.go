package kafka

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/connectors"
)

// readN reads until it has n deliveries, acknowledging none.
func readN(tb testing.TB, r connectors.Reader, n int) []connectors.Delivery {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var ds []connectors.Delivery
	for len(ds) < n {
		got, err := r.Read(ctx, n-len(ds))
		require.NoError(tb, err, "%d of %d read", len(ds), n)
		ds = append(ds, got...)
	}
	return ds
}

// messages returns n messages with data "0".."n-1" and no key.
func messages(from, to int) []connectors.Message {
	var ms []connectors.Message
	for i := from; i < to; i++ {
		ms = append(ms, connectors.Message{Data: []byte(strconv.Itoa(i))})
	}
	return ms
}

func TestAcksCommitOnlyTheContiguousPrefix(t *testing.T) {
	addrs := startCluster(t, 1, "orders")
	adm := admin(t, addrs)
	// A commit interval longer than the test: commits happen when the
	// test flushes, so it can check each one.
	c := newConnector(t, "bus", addrs, "orders", map[string]string{"commit_interval": "1h"})
	w := newWriter(t, c, "orders")
	r := newReader(t, c, "orders", connectors.ReadOptions{Group: "g", FromStart: true})
	require.NoError(t, w.Write(t.Context(), messages(0, 10)))
	ds := readN(t, r, 10)
	for i, d := range ds {
		require.Equal(t, strconv.Itoa(i), string(d.Data), "one partition keeps the order")
	}
	flush := func() map[int32]int64 {
		require.NoError(t, r.(*reader).flush(t.Context()))
		return committed(t, adm, "g", "orders")
	}
	for _, step := range []struct {
		ack  []int
		want map[int32]int64
	}{
		{ack: []int{1, 2, 3}, want: map[int32]int64{}}, // offset 0 not acknowledged: nothing
		{ack: []int{0}, want: map[int32]int64{0: 4}},
		{ack: []int{5, 6, 9}, want: map[int32]int64{0: 4}},
		{ack: []int{4}, want: map[int32]int64{0: 7}},
		{ack: []int{8}, want: map[int32]int64{0: 7}},
		{ack: []int{7}, want: map[int32]int64{0: 10}},
	} {
		for _, i := range step.ack {
			require.NoError(t, ds[i].Ack())
		}
		require.Equal(t, step.want, flush(), "after acknowledging %v", step.ack)
	}
	err := ds[3].Ack()
	require.ErrorIs(t, err, connectors.ErrAcked)
	require.ErrorContains(t, err, `kafka connector "bus": key "orders": ack offset 3`)
}

func TestConcurrentOutOfOrderAcks(t *testing.T) {
	addrs := startCluster(t, 4, "orders")
	adm := admin(t, addrs)
	for _, workers := range []int{1, 4, 16} {
		t.Run(fmt.Sprintf("ackers=%d", workers), func(t *testing.T) {
			group := fmt.Sprintf("g%d", workers)
			c := newConnector(t, "bus", addrs, "orders", map[string]string{"commit_interval": "1h"})
			r := newReader(t, c, "orders", connectors.ReadOptions{Group: group, FromStart: true})
			if workers == 1 {
				var ms []connectors.Message
				for i := range 400 {
					ms = append(ms, connectors.Message{Key: "k" + strconv.Itoa(i%37), Data: []byte(strconv.Itoa(i))})
				}
				require.NoError(t, newWriter(t, c, "orders").Write(t.Context(), ms))
			}
			var entries []*entry
			r.(*reader).handed = func(e *entry) { entries = append(entries, e) }
			ds := readN(t, r, 400)
			// Hold one record back per partition: the commit of its
			// partition stops right before it.
			held := map[int32]int{} // partition -> index in ds of the held record
			perm := rand.Perm(len(ds))
			offsets := make([]int64, len(ds))
			parts := make([]int32, len(ds))
			for i := range ds {
				offsets[i], parts[i] = entries[i].offset, entries[i].part.id
			}
			for _, i := range perm {
				if _, ok := held[parts[i]]; !ok && offsets[i] > 0 {
					held[parts[i]] = i
				}
			}
			var wg sync.WaitGroup
			next := make(chan int)
			for range workers {
				wg.Go(func() {
					for i := range next {
						assert.NoError(t, ds[i].Ack())
					}
				})
			}
			heldIdx := map[int]bool{}
			for _, i := range held {
				heldIdx[i] = true
			}
			for _, i := range perm {
				if !heldIdx[i] {
					next <- i
				}
			}
			close(next)
			wg.Wait()
			require.NoError(t, r.(*reader).flush(t.Context()))
			got := committed(t, adm, group, "orders")
			for p, i := range held {
				require.Equal(t, offsets[i], got[p], "partition %d: committed up to the held record", p)
			}
			for _, i := range held {
				require.NoError(t, ds[i].Ack())
			}
			require.NoError(t, r.(*reader).flush(t.Context()))
			require.Equal(t, endOffsets(t, adm, "orders"), committed(t, adm, group, "orders"))
		})
	}
}
