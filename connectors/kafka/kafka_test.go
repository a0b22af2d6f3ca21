package kafka

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

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

// revokeSetup writes 80 keyed messages to a topic of four partitions and
// has reader A of group g read them all without acknowledging; then B
// joins the group. It returns, while A's revoke waits, A's deliveries,
// the partition of each, the partitions the revoke takes away, and a
// channel that gets B's first read.
func revokeSetup(t *testing.T, revokeWait string) (addrs string, a, b connectors.Reader, ds []connectors.Delivery, parts, revoking []int32, bFirst chan []connectors.Delivery) {
	addrs = startCluster(t, 4, "orders")
	params := map[string]string{"revoke_wait": revokeWait, "commit_interval": "1h", "session_timeout": "10s", "heartbeat_interval": "100ms"}
	ca := newConnector(t, "a", addrs, "orders", params)
	var ms []connectors.Message
	for i := range 80 {
		ms = append(ms, connectors.Message{Key: "k" + strconv.Itoa(i), Data: []byte(strconv.Itoa(i))})
	}
	require.NoError(t, newWriter(t, ca, "orders").Write(t.Context(), ms))
	a = newReader(t, ca, "orders", connectors.ReadOptions{Group: "g", FromStart: true})
	ra := a.(*reader)
	ra.handed = func(e *entry) { parts = append(parts, e.part.id) }
	revokes := make(chan []int32, 1)
	ra.revoking = func(ids []int32) { revokes <- ids }
	ds = readN(t, a, len(ms))

	cb := newConnector(t, "b", addrs, "orders", params)
	b = newReader(t, cb, "orders", connectors.ReadOptions{Group: "g", FromStart: true})
	bFirst = make(chan []connectors.Delivery, 1)
	go func() { // joins the group
		got, _ := b.Read(t.Context(), 80)
		bFirst <- got
	}()
	select {
	case revoking = <-revokes:
	case <-time.After(deadline):
	}
	require.NotEmpty(t, revoking, "no revoke")
	return addrs, a, b, ds, parts, revoking, bFirst
}

func TestRevokeWaitsForInFlightRows(t *testing.T) {
	addrs, a, _, ds, parts, revoking, _ := revokeSetup(t, "1m")
	adm := admin(t, addrs)
	// While the revoke waits, nothing of its partitions is committed.
	require.Empty(t, committed(t, adm, "g", "orders"))
	// Acknowledging the rows of the revoked partitions lets the revoke
	// commit them and finish: the new owner starts after them.
	for i, d := range ds {
		if slices.Contains(revoking, parts[i]) {
			require.NoError(t, d.Ack())
		}
	}
	ends := endOffsets(t, adm, "orders")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got := committed(t, adm, "g", "orders")
		for _, p := range revoking {
			assert.Equal(c, ends[p], got[p], "partition %d", p)
		}
	}, deadline, 10*time.Millisecond)
	// The rows A still holds, of the partitions it kept, commit as usual.
	for i, d := range ds {
		if !slices.Contains(revoking, parts[i]) {
			require.NoError(t, d.Ack())
		}
	}
	require.NoError(t, a.(*reader).flush(t.Context()))
	require.Equal(t, ends, committed(t, adm, "g", "orders"))
}

func TestRevokeWaitIsBounded(t *testing.T) {
	addrs, a, b, ds, parts, revoking, bFirst := revokeSetup(t, "100ms")
	adm := admin(t, addrs)
	// Nobody acknowledges: the revoke gives up after revoke_wait and
	// commits nothing of its partitions, and B reads their rows again.
	want := 0
	for _, p := range parts {
		if slices.Contains(revoking, p) {
			want++
		}
	}
	var got []connectors.Delivery
	select {
	case got = <-bFirst:
	case <-time.After(deadline):
		t.Fatal("B read nothing")
	}
	for len(got) < want {
		more, err := b.Read(t.Context(), want)
		require.NoError(t, err)
		got = append(got, more...)
	}
	require.Len(t, got, want, "B reads again exactly the rows of the revoked partitions")
	require.Empty(t, committed(t, adm, "g", "orders"), "nothing acknowledged, nothing committed")

	// A late acknowledgement of a revoked row commits nothing: A forgot
	// the partition, which B owns now.
	for i, d := range ds {
		if slices.Contains(revoking, parts[i]) {
			require.NoError(t, d.Ack())
		}
	}
	require.NoError(t, a.(*reader).flush(t.Context()))
	require.Empty(t, committed(t, adm, "g", "orders"))

	for _, d := range got {
		require.NoError(t, d.Ack())
	}
	require.NoError(t, b.(*reader).flush(t.Context()))
	ends := endOffsets(t, adm, "orders")
	done := committed(t, adm, "g", "orders")
	for _, p := range revoking {
		require.Equal(t, ends[p], done[p], "partition %d", p)
	}
}
