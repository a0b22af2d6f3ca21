package memory

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/connectors"
)

func TestMemoryOrderWithinReader(t *testing.T) {
	m := newTestTopic(t, 16)
	r := m.reader(t, "k", "g", false)
	w := m.writer(t, "k")

	done := make(chan error, 1)
	go func() {
		for i := 1; i <= 100; i += 10 {
			if err := w.Write(context.Background(), msgs(i, i+9)); err != nil {
				done <- err
				return
			}
		}
		done <- w.Close()
	}()

	var got []string
	for {
		ds, err := r.Read(t.Context(), 7)
		if errors.Is(err, connectors.ErrEnded) {
			break
		}
		require.NoError(t, err)
		require.LessOrEqual(t, len(ds), 7)
		got = append(got, data(ds)...)
		ackAll(t, ds)
	}
	require.NoError(t, <-done)
	assert.Equal(t, nums(1, 100), got)
}

func TestMemoryGroupsEachSeeEveryMessage(t *testing.T) {
	m := newTestTopic(t, 64)
	readers := []connectors.Reader{
		m.reader(t, "k", "a", false),
		m.reader(t, "k", "b", false),
		m.reader(t, "k", "", false), // private
		m.reader(t, "k", "", false), // another private group
	}
	w := m.writer(t, "k")
	require.NoError(t, w.Write(t.Context(), msgs(1, 20)))
	require.NoError(t, w.Close())

	for i, r := range readers {
		ds := readN(t, r, 20, 6)
		assert.Equal(t, nums(1, 20), data(ds), "reader %d", i)
		ackAll(t, ds)
		_, err := r.Read(t.Context(), 1)
		assert.ErrorIs(t, err, connectors.ErrEnded, "reader %d", i)
	}
}

func TestMemorySharedGroupNoLossNoDuplicate(t *testing.T) {
	const n = 2000
	m := newTestTopic(t, 16) // small, so the writer is pushed back often
	readers := []connectors.Reader{m.reader(t, "k", "g", false), m.reader(t, "k", "g", false)}
	w := m.writer(t, "k")

	var wg sync.WaitGroup
	got := make([][]int, len(readers))
	errs := make([]error, len(readers)+1)
	for i, r := range readers {
		wg.Go(func() {
			for {
				ds, err := r.Read(context.Background(), 5)
				if errors.Is(err, connectors.ErrEnded) {
					return
				}
				if err != nil {
					errs[i] = err
					return
				}
				for _, d := range ds {
					v, err := strconv.Atoi(string(d.Data))
					if err == nil {
						err = d.Ack()
					}
					if err != nil {
						errs[i] = err
						return
					}
					got[i] = append(got[i], v)
				}
			}
		})
	}
	wg.Go(func() {
		for i := 1; i <= n; i += 7 {
			if err := w.Write(context.Background(), msgs(i, min(i+6, n))); err != nil {
				errs[len(readers)] = err
				return
			}
		}
		errs[len(readers)] = w.Close()
	})
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}

	seen := make(map[int]bool, n)
	sum := 0
	for i, vs := range got {
		last := 0
		for _, v := range vs {
			assert.False(t, seen[v], "duplicate %d", v)
			assert.Greater(t, v, last, "reader %d out of order", i)
			seen[v], last = true, v
			sum += v
		}
	}
	assert.Len(t, seen, n)
	assert.Equal(t, n*(n+1)/2, sum)
}

func TestMemoryRedeliversUnackedOfClosedReader(t *testing.T) {
	m := newTestTopic(t, 16)
	r1 := m.reader(t, "k", "g", false)
	r2 := m.reader(t, "k", "g", false)
	w := m.writer(t, "k")
	require.NoError(t, w.Write(t.Context(), msgs(1, 3)))
	require.NoError(t, w.Close())

	first := readN(t, r1, 2, 2)
	require.Equal(t, nums(1, 2), data(first))
	require.NoError(t, r1.Close())

	again := readN(t, r2, 3, 10)
	assert.Equal(t, nums(1, 3), data(again), "redeliveries come first, in order")
	for _, d := range first {
		assert.Error(t, d.Ack(), "the superseded delivery cannot be acknowledged")
	}
	ackAll(t, again)
	_, err := r2.Read(t.Context(), 1)
	assert.ErrorIs(t, err, connectors.ErrEnded)
}

func TestMemoryRedeliveryToLaterReaderOfGroup(t *testing.T) {
	m := newTestTopic(t, 16)
	r1 := m.reader(t, "k", "g", false)
	w := m.writer(t, "k")
	require.NoError(t, w.Write(t.Context(), msgs(1, 3)))

	ds := readN(t, r1, 2, 2)
	require.NoError(t, ds[0].Ack())
	require.NoError(t, r1.Close())

	// The group keeps its cursor and the unacknowledged message; FromStart
	// does not apply to an existing group.
	r2 := m.reader(t, "k", "g", true)
	again := readN(t, r2, 2, 10)
	assert.Equal(t, []string{"2", "3"}, data(again))
	ackAll(t, again)
}

func TestMemoryLateAckOfClosedReaderCounts(t *testing.T) {
	m := newTestTopic(t, 16)
	r1 := m.reader(t, "k", "g", false)
	r2 := m.reader(t, "k", "g", false)
	w := m.writer(t, "k")
	require.NoError(t, w.Write(t.Context(), msgs(1, 3)))
	require.NoError(t, w.Close())

	ds := readN(t, r1, 2, 2)
	require.NoError(t, r1.Close())
	// Handled after its reader closed but before redelivery: not redelivered.
	require.NoError(t, ds[0].Ack())
	assert.ErrorIs(t, ds[0].Ack(), connectors.ErrAcked)

	again := readN(t, r2, 2, 10)
	assert.Equal(t, []string{"2", "3"}, data(again))
	ackAll(t, again)
	_, err := r2.Read(t.Context(), 1)
	assert.ErrorIs(t, err, connectors.ErrEnded)
}

func TestMemoryFromStart(t *testing.T) {
	m := newTestTopic(t, 3)
	w := m.writer(t, "k")
	// No group holds messages back: the oldest are overwritten, never blocking.
	require.NoError(t, w.Write(t.Context(), msgs(1, 5)))

	fresh := m.reader(t, "k", "fresh", false)
	require.NoError(t, w.Write(t.Context(), msgs(6, 6)))
	require.NoError(t, w.Close())
	old := m.reader(t, "k", "old", true)

	ds := readN(t, old, 3, 10)
	assert.Equal(t, []string{"4", "5", "6"}, data(ds))
	ackAll(t, ds)

	ds, err := fresh.Read(t.Context(), 10)
	require.NoError(t, err)
	assert.Equal(t, []string{"6"}, data(ds))
	ackAll(t, ds)
	_, err = fresh.Read(t.Context(), 1)
	assert.ErrorIs(t, err, connectors.ErrEnded)
}

func TestMemoryCapacityBlocksWriterUntilAck(t *testing.T) {
	m := newTestTopic(t, 2)
	r := m.reader(t, "k", "g", false)
	w := m.writer(t, "k")
	require.NoError(t, w.Write(t.Context(), msgs(1, 2)))

	done := make(chan error, 1)
	go func() { done <- w.Write(context.Background(), msgs(3, 3)) }()
	m.awaitWaiting("k", 1, 0)

	ds := readN(t, r, 2, 2) // read but unacknowledged: still retained
	assertBlocked(t, done)
	require.NoError(t, ds[1].Ack()) // out of order: 1 still holds the oldest slot
	assertBlocked(t, done)
	require.NoError(t, ds[0].Ack())
	require.NoError(t, <-done)

	ds = readN(t, r, 1, 10)
	assert.Equal(t, []string{"3"}, data(ds))
	ackAll(t, ds)
}

// assertBlocked checks that a Write known to be blocked has not returned.
func assertBlocked(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("write returned %v while the log was full", err)
	default:
	}
}

func TestMemorySlowGroupHoldsBackWriter(t *testing.T) {
	m := newTestTopic(t, 2)
	fast := m.reader(t, "k", "fast", false)
	slow := m.reader(t, "k", "slow", false)
	w := m.writer(t, "k")
	require.NoError(t, w.Write(t.Context(), msgs(1, 2)))
	ackAll(t, readN(t, fast, 2, 2))
	assert.Equal(t, 0, m.free("k"), "the slow group has acknowledged nothing")

	ackAll(t, readN(t, slow, 1, 1))
	assert.Equal(t, 1, m.free("k"))
}

func TestMemoryClosingPrivateReaderReleasesWriter(t *testing.T) {
	m := newTestTopic(t, 1)
	r := m.reader(t, "k", "", false)
	w := m.writer(t, "k")
	require.NoError(t, w.Write(t.Context(), msgs(1, 1)))

	done := make(chan error, 1)
	go func() { done <- w.Write(context.Background(), msgs(2, 2)) }()
	m.awaitWaiting("k", 1, 0)
	ds := readN(t, r, 1, 1)
	require.NoError(t, r.Close())
	require.NoError(t, <-done)
	assert.ErrorIs(t, ds[0].Ack(), connectors.ErrClosed, "its group is gone")
}

func TestMemoryWriteHonoursContext(t *testing.T) {
	m := newTestTopic(t, 1)
	r := m.reader(t, "k", "g", false)
	w := m.writer(t, "k")
	require.NoError(t, w.Write(t.Context(), msgs(1, 1)))

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Write(ctx, msgs(2, 2)) }()
	m.awaitWaiting("k", 1, 0)
	cancel()
	err := <-done
	require.ErrorIs(t, err, context.Canceled)
	assert.ErrorContains(t, err, `"test"`)
	assert.ErrorContains(t, err, `"k"`)

	require.NoError(t, w.Close())
	ds := readN(t, r, 1, 10)
	assert.Equal(t, []string{"1"}, data(ds))
	ackAll(t, ds)
	_, err = r.Read(t.Context(), 1)
	assert.ErrorIs(t, err, connectors.ErrEnded, "the cancelled write saved nothing")
}

func TestMemoryReadHonoursContext(t *testing.T) {
	m := newTestTopic(t, 4)
	r := m.reader(t, "k", "g", false)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(ctx, 1)
		done <- err
	}()
	m.awaitWaiting("k", 0, 1)
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)

	// A Read with a done context delivers nothing, so nothing is lost.
	w := m.writer(t, "k")
	require.NoError(t, w.Write(t.Context(), msgs(1, 1)))
	_, err := r.Read(ctx, 1)
	assert.ErrorIs(t, err, context.Canceled)
	ds := readN(t, r, 1, 1)
	assert.Equal(t, []string{"1"}, data(ds))
	ackAll(t, ds)
}

func TestMemoryEndOfStreamAfterEveryWriterCloses(t *testing.T) {
	m := newTestTopic(t, 16)
	r := m.reader(t, "k", "g", false)
	w1 := m.writer(t, "k")
	w2 := m.writer(t, "k")
	require.NoError(t, w1.Write(t.Context(), []connectors.Message{{Data: []byte("a1")}, {Data: []byte("a2")}}))
	require.NoError(t, w2.Write(t.Context(), []connectors.Message{{Data: []byte("b1")}}))
	require.NoError(t, w1.Close())

	ds := readN(t, r, 3, 10)
	assert.Equal(t, []string{"a1", "a2", "b1"}, data(ds))
	ackAll(t, ds)

	// w2 is still open: the reader waits rather than ending.
	done := make(chan []string, 1)
	errc := make(chan error, 1)
	go func() {
		var got []string
		for {
			ds, err := r.Read(context.Background(), 10)
			if err != nil {
				done <- got
				errc <- err
				return
			}
			got = append(got, data(ds)...)
			for _, d := range ds {
				if err := d.Ack(); err != nil {
					done <- got
					errc <- err
					return
				}
			}
		}
	}()
	m.awaitWaiting("k", 0, 1)
	require.NoError(t, w2.Write(t.Context(), []connectors.Message{{Data: []byte("b2")}}))
	require.NoError(t, w2.Close())
	assert.Equal(t, []string{"b2"}, <-done)
	assert.ErrorIs(t, <-errc, connectors.ErrEnded)
}

func TestMemoryEndWaitsForOtherReadersUnacked(t *testing.T) {
	m := newTestTopic(t, 16)
	r1 := m.reader(t, "k", "g", false)
	r2 := m.reader(t, "k", "g", false)
	w := m.writer(t, "k")
	require.NoError(t, w.Write(t.Context(), msgs(1, 2)))
	require.NoError(t, w.Close())
	held := readN(t, r1, 2, 2)

	// r1's own unacknowledged deliveries do not keep r1 from ending...
	_, err := r1.Read(t.Context(), 1)
	require.ErrorIs(t, err, connectors.ErrEnded)

	// ...but r2 waits for them: they come back to r2 if r1 closes.
	got := make(chan []connectors.Delivery, 1)
	go func() {
		ds, _ := r2.Read(context.Background(), 10)
		got <- ds
	}()
	m.awaitWaiting("k", 0, 1)
	require.NoError(t, r1.Close())
	ds := <-got
	assert.Equal(t, nums(1, 2), data(ds))
	ackAll(t, ds)
	_, err = r2.Read(t.Context(), 1)
	assert.ErrorIs(t, err, connectors.ErrEnded)
	for _, d := range held {
		assert.Error(t, d.Ack())
	}
}

func TestMemoryEndAfterOtherReaderAcks(t *testing.T) {
	m := newTestTopic(t, 16)
	r1 := m.reader(t, "k", "g", false)
	r2 := m.reader(t, "k", "g", false)
	w := m.writer(t, "k")
	require.NoError(t, w.Write(t.Context(), msgs(1, 1)))
	require.NoError(t, w.Close())
	held := readN(t, r1, 1, 1)

	done := make(chan error, 1)
	go func() {
		_, err := r2.Read(context.Background(), 10)
		done <- err
	}()
	m.awaitWaiting("k", 0, 1)
	ackAll(t, held)
	assert.ErrorIs(t, <-done, connectors.ErrEnded)
}

func TestMemoryNewWriterReopensEndedKey(t *testing.T) {
	m := newTestTopic(t, 16)
	r := m.reader(t, "k", "g", false)
	w := m.writer(t, "k")
	require.NoError(t, w.Write(t.Context(), msgs(1, 1)))
	require.NoError(t, w.Close())
	ackAll(t, readN(t, r, 1, 1))
	_, err := r.Read(t.Context(), 1)
	require.ErrorIs(t, err, connectors.ErrEnded)

	w = m.writer(t, "k")
	got := make(chan []connectors.Delivery, 1)
	go func() {
		ds, _ := r.Read(context.Background(), 10)
		got <- ds
	}()
	m.awaitWaiting("k", 0, 1)
	require.NoError(t, w.Write(t.Context(), msgs(2, 2)))
	ds := <-got
	assert.Equal(t, []string{"2"}, data(ds))
	ackAll(t, ds)
	require.NoError(t, w.Close())
	_, err = r.Read(t.Context(), 1)
	assert.ErrorIs(t, err, connectors.ErrEnded)
}

func TestMemoryReaderWithoutWritersWaits(t *testing.T) {
	m := newTestTopic(t, 4)
	r := m.reader(t, "k", "g", false)
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(context.Background(), 1)
		done <- err
	}()
	m.awaitWaiting("k", 0, 1) // no writer ever opened: not ended
	require.NoError(t, r.Close())
	assert.ErrorIs(t, <-done, connectors.ErrClosed, "closing a reader wakes its Read")
}

func TestMemoryCloseUnblocksEveryone(t *testing.T) {
	m := newTestTopic(t, 1)
	r := m.reader(t, "k", "g", false)
	idle := m.reader(t, "k", "idle", false)
	w := m.writer(t, "k")
	require.NoError(t, w.Write(t.Context(), msgs(1, 1)))
	held := readN(t, r, 1, 1)
	ackAll(t, readN(t, idle, 1, 1))

	errs := make(chan error, 2)
	go func() { errs <- w.Write(context.Background(), msgs(2, 2)) }()
	go func() {
		_, err := idle.Read(context.Background(), 1)
		errs <- err
	}()
	m.awaitWaiting("k", 1, 1)
	require.NoError(t, m.Close(t.Context()))
	for range 2 {
		err := <-errs
		assert.ErrorIs(t, err, connectors.ErrClosed)
		assert.ErrorContains(t, err, `"test"`)
	}

	assert.ErrorIs(t, held[0].Ack(), connectors.ErrClosed)
	assert.ErrorIs(t, m.Close(t.Context()), connectors.ErrClosed)
	assert.ErrorIs(t, m.Init(t.Context()), connectors.ErrClosed)
	_, err := m.Writer(t.Context(), "k")
	assert.ErrorIs(t, err, connectors.ErrClosed)
	_, err = m.Reader(t.Context(), "other", connectors.ReadOptions{})
	assert.ErrorIs(t, err, connectors.ErrClosed)
	_, err = r.Read(t.Context(), 1)
	assert.ErrorIs(t, err, connectors.ErrClosed)
	assert.ErrorIs(t, w.Write(t.Context(), msgs(3, 3)), connectors.ErrClosed)
	assert.NoError(t, w.Close())
	assert.NoError(t, r.Close())
}

func TestMemoryDoubleAck(t *testing.T) {
	m := newTestTopic(t, 2)
	r := m.reader(t, "k", "g", false)
	w := m.writer(t, "k")
	require.NoError(t, w.Write(t.Context(), msgs(1, 2)))
	ds := readN(t, r, 2, 2)

	require.NoError(t, ds[1].Ack())
	assert.ErrorIs(t, ds[1].Ack(), connectors.ErrAcked)
	assert.Equal(t, 0, m.free("k"))
	require.NoError(t, ds[0].Ack())
	err := ds[0].Ack()
	assert.ErrorIs(t, err, connectors.ErrAcked)
	assert.ErrorContains(t, err, `"k"`)
	assert.Equal(t, 2, m.free("k"), "double acks did not corrupt the accounting")

	require.NoError(t, w.Write(t.Context(), msgs(3, 4)))
	ds = readN(t, r, 2, 2)
	assert.Equal(t, nums(3, 4), data(ds))
	ackAll(t, ds)
	assert.ErrorIs(t, ds[0].Ack(), connectors.ErrAcked)
}

func TestMemoryConcurrentAcks(t *testing.T) {
	m := newTestTopic(t, 64)
	r := m.reader(t, "k", "g", false)
	w := m.writer(t, "k")
	require.NoError(t, w.Write(t.Context(), msgs(1, 64)))
	ds := readN(t, r, 64, 64)

	var wg sync.WaitGroup
	errs := make([]error, len(ds))
	for i := len(ds) - 1; i >= 0; i-- { // any goroutine, any order
		wg.Go(func() { errs[i] = ds[i].Ack() })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, 64, m.free("k"))
}

func TestMemoryHandleErrors(t *testing.T) {
	m := newTestTopic(t, 4)
	w := m.writer(t, "k")
	r := m.reader(t, "k", "g", false)

	_, err := r.Read(t.Context(), 0)
	assert.ErrorContains(t, err, "max 0")

	require.NoError(t, w.Close())
	assert.ErrorIs(t, w.Close(), connectors.ErrClosed)
	assert.ErrorIs(t, w.Write(t.Context(), msgs(1, 1)), connectors.ErrClosed)

	require.NoError(t, r.Close())
	assert.ErrorIs(t, r.Close(), connectors.ErrClosed)
	_, err = r.Read(t.Context(), 1)
	assert.ErrorIs(t, err, connectors.ErrClosed)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = m.Writer(ctx, "k")
	assert.ErrorIs(t, err, context.Canceled)
	_, err = m.Reader(ctx, "k", connectors.ReadOptions{})
	assert.ErrorIs(t, err, context.Canceled)
}

func TestMemoryConfig(t *testing.T) {
	for _, bad := range []string{"", "abc", "0", "-3", "1.5"} {
		m := New(connectors.Config{Name: "topic", Params: map[string]string{"capacity": bad}})
		err := m.Init(t.Context())
		require.ErrorIs(t, err, connectors.ErrConfig, "capacity %q", bad)
		assert.ErrorContains(t, err, `"topic"`)
		assert.ErrorContains(t, err, "capacity")
		_, err = m.Writer(t.Context(), "k")
		assert.ErrorIs(t, err, connectors.ErrConfig)
		_, err = m.Reader(t.Context(), "k", connectors.ReadOptions{})
		assert.ErrorIs(t, err, connectors.ErrConfig)
	}

	m := New(connectors.Config{Name: "topic", Params: map[string]string{"capacity": " 10 "}})
	require.NoError(t, m.Init(t.Context()))
	assert.Equal(t, 10, m.capacity)
	require.NoError(t, m.Close(t.Context()))
	assert.Equal(t, defaultCapacity, New(connectors.Config{}).capacity)
}

func TestMemoryDefaultKey(t *testing.T) {
	m := New(connectors.Config{Name: "topic", Key: "orders"})
	defer m.Close(context.Background())
	w, err := m.Writer(t.Context(), "")
	require.NoError(t, err)
	r, err := m.Reader(t.Context(), "orders", connectors.ReadOptions{FromStart: true})
	require.NoError(t, err)
	require.NoError(t, w.Write(t.Context(), msgs(1, 1)))
	ds := readN(t, r, 1, 1)
	assert.Equal(t, []string{"1"}, data(ds))
	ackAll(t, ds)
}

func TestMemoryZeroValue(t *testing.T) {
	var m Topic
	require.NoError(t, m.Init(t.Context()))
	_, err := m.Writer(t.Context(), "")
	assert.ErrorIs(t, err, connectors.ErrConfig, "no key and no default key")

	r, err := m.Reader(t.Context(), "k", connectors.ReadOptions{})
	require.NoError(t, err)
	w, err := m.Writer(t.Context(), "k")
	require.NoError(t, err)
	require.NoError(t, w.Write(t.Context(), msgs(1, 3)))
	require.NoError(t, w.Close())
	ds := readN(t, r, 3, 10)
	assert.Equal(t, nums(1, 3), data(ds))
	ackAll(t, ds)
	_, err = r.Read(t.Context(), 1)
	assert.ErrorIs(t, err, connectors.ErrEnded)
	require.NoError(t, m.Close(t.Context()))
}

func TestMemoryRingGrowsAndWraps(t *testing.T) {
	m := newTestTopic(t, 50)
	r := m.reader(t, "k", "g", false)
	w := m.writer(t, "k")
	next := 1
	for round := range 20 {
		n := 1 + round*7%45
		require.NoError(t, w.Write(t.Context(), msgs(next, next+n-1)))
		ds := readN(t, r, n, 13)
		require.Equal(t, nums(next, next+n-1), data(ds))
		ackAll(t, ds)
		next += n
	}
}

func TestMemoryWritersParamWaitsForEverySaver(t *testing.T) {
	m := newTestTopic(t, 16)
	m.writers = 2 // as Params["writers"] = "2"
	ctx := t.Context()
	r := m.reader(t, "k", "g", false)
	w1 := m.writer(t, "k")
	require.NoError(t, w1.Write(ctx, []connectors.Message{{Data: []byte("a")}}))
	require.NoError(t, w1.Close()) // the first saver is done before the second opens
	ds, err := r.Read(ctx, 10)
	require.NoError(t, err)
	require.Len(t, ds, 1)
	require.NoError(t, ds[0].Ack())

	// The key waits for its second writer: Read blocks instead of ending.
	got := make(chan error, 1)
	go func() {
		ds, err := r.Read(ctx, 10)
		if err == nil && (len(ds) != 1 || string(ds[0].Data) != "b") {
			err = fmt.Errorf("read %d deliveries, want b", len(ds))
		}
		if err == nil {
			err = ds[0].Ack()
		}
		got <- err
	}()
	waiting := make(chan struct{})
	go func() { m.awaitWaiting("k", 0, 1); close(waiting) }()
	select {
	case err := <-got:
		t.Fatalf("Read returned before the second writer opened: %v", err)
	case <-waiting:
	}
	w2 := m.writer(t, "k")
	require.NoError(t, w2.Write(ctx, []connectors.Message{{Data: []byte("b")}}))
	require.NoError(t, <-got)
	require.NoError(t, w2.Close())
	_, err = r.Read(ctx, 10)
	require.ErrorIs(t, err, connectors.ErrEnded, "both writers came and went: the key ends")

	bad := New(connectors.Config{Name: "m", Params: map[string]string{"writers": "zero"}})
	require.ErrorIs(t, bad.Init(ctx), connectors.ErrConfig)
}

func TestMemoryCarriesHeaders(t *testing.T) {
	m := newTestTopic(t, 16)
	r1 := m.reader(t, "k", "g1", false)
	r2 := m.reader(t, "k", "g2", false)
	w := m.writer(t, "k")

	h := map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "content-type": "application/json"}
	want := maps.Clone(h)
	require.NoError(t, w.Write(t.Context(), []connectors.Message{
		{Key: "a", Data: []byte("1"), Headers: h},
		{Data: []byte("2")},
	}))
	h["traceparent"] = "changed by the writer" // the log kept a copy
	delete(h, "content-type")

	ds1 := readN(t, r1, 2, 10)
	assert.Equal(t, connectors.Message{Key: "a", Data: []byte("1"), Headers: want}, ds1[0].Message)
	assert.Nil(t, ds1[1].Headers, "a message without headers is read without")

	ds1[0].Headers["traceparent"] = "changed by a reader" // each delivery has its own map
	ds2 := readN(t, r2, 2, 10)
	assert.Equal(t, want, ds2[0].Headers)
	assert.Nil(t, ds2[1].Headers)
	ackAll(t, ds1)
	ackAll(t, ds2)
}

func TestRegister(t *testing.T) {
	reg := connectors.NewRegistry()
	require.NoError(t, Register(reg))
	assert.Equal(t, []string{Type}, reg.Types())
	require.ErrorContains(t, Register(reg), "already registered")
	require.Error(t, Register(nil))

	c, err := reg.New(connectors.Config{Name: "orders", Type: Type})
	require.NoError(t, err)
	assert.IsType(t, &Topic{}, c)
	require.NoError(t, c.Close(t.Context()))

	_, err = reg.New(connectors.Config{Name: "events", Type: Type, Params: map[string]string{"capacity": "many"}})
	require.ErrorIs(t, err, connectors.ErrConfig)
	assert.ErrorContains(t, err, `"events"`)
	assert.ErrorContains(t, err, "capacity")
}
