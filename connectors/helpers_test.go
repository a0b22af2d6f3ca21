package connectors

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// testMemory is a Memory whose waits can be observed, so tests can sequence
// themselves on "someone is blocked" without sleeping.
type testMemory struct {
	*Memory
	poke chan struct{}
}

func newTestMemory(t *testing.T, capacity int) *testMemory {
	t.Helper()
	m := NewMemory(Config{Name: "test", Params: map[string]string{"capacity": strconv.Itoa(capacity)}})
	require.NoError(t, m.Init(t.Context()))
	poke := make(chan struct{}, 1)
	m.waitHook = func() {
		select {
		case poke <- struct{}{}:
		default:
		}
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return &testMemory{Memory: m, poke: poke}
}

// awaitWaiting returns once at least writers Writes and readers Reads are
// blocked on key.
func (m *testMemory) awaitWaiting(key string, writers, readers int) {
	for {
		m.mu.Lock()
		tp := m.topics[key]
		m.mu.Unlock()
		if tp != nil {
			tp.mu.Lock()
			w, r := tp.room.waiting, tp.arrivals.waiting
			tp.mu.Unlock()
			if w >= writers && r >= readers {
				return
			}
		}
		<-m.poke
	}
}

// free returns how many messages key can take without blocking a writer.
func (m *testMemory) free(key string) int {
	m.mu.Lock()
	tp := m.topics[key]
	m.mu.Unlock()
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.free()
}

func (m *testMemory) writer(t *testing.T, key string) Writer {
	t.Helper()
	w, err := m.Writer(t.Context(), key)
	require.NoError(t, err)
	return w
}

func (m *testMemory) reader(t *testing.T, key, group string, fromStart bool) Reader {
	t.Helper()
	r, err := m.Reader(t.Context(), key, ReadOptions{Group: group, FromStart: fromStart})
	require.NoError(t, err)
	return r
}

// msgs returns messages whose data are the numbers from..to.
func msgs(from, to int) []Message {
	var ms []Message
	for i := from; i <= to; i++ {
		ms = append(ms, Message{Data: []byte(strconv.Itoa(i))})
	}
	return ms
}

// data returns the data of ds as strings.
func data(ds []Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d.Data)
	}
	return out
}

// nums returns the numbers from..to as strings.
func nums(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

// readN reads until it has n deliveries.
func readN(t *testing.T, r Reader, n, batch int) []Delivery {
	t.Helper()
	var all []Delivery
	for len(all) < n {
		ds, err := r.Read(t.Context(), min(batch, n-len(all)))
		require.NoError(t, err)
		all = append(all, ds...)
	}
	return all
}

func ackAll(t *testing.T, ds []Delivery) {
	t.Helper()
	for _, d := range ds {
		require.NoError(t, d.Ack())
	}
}
