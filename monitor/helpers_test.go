package monitor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/fanout"
	"github.com/kisflow/kisflow/monitor"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// serve starts an httptest server for h on 127.0.0.1 and closes it when the
// test ends.
func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// get fetches url and returns the response and its body.
func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

// snapshot fetches and decodes /api/flows.
func snapshot(t *testing.T, srv *httptest.Server) monitor.Snapshot {
	t.Helper()
	resp, body := get(t, srv.URL+"/api/flows")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var s monitor.Snapshot
	require.NoError(t, json.Unmarshal(body, &s))
	return s
}

// node returns the node named name of f.
func node(t *testing.T, f monitor.Flow, name string) monitor.Node {
	t.Helper()
	for _, n := range f.Nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("flow %s has no node %s", f.Name, name)
	return monitor.Node{}
}

// Order is the row of the live flow.
type Order struct {
	ID     int
	Amount int64
}

// liveStages are the nodes of the live flow, in the order they are added.
var liveStages = []string{"Orders", "VerifyOrder", "CalcTax", "Fanout", "SaveOrder", "NotifyUser"}

// startLive starts a long-running pipeline, fed by a goroutine at about
// rate rows per second: Orders → VerifyOrder → CalcTax (cost per row, four
// workers) → Fanout → SaveOrder and NotifyUser, which fails one row in 53
// and skips it. The feeder and the pipeline are stopped and waited for when
// the test ends.
func startLive(t *testing.T, rate int, cost time.Duration) *pipeline.Pipeline {
	t.Helper()
	p := pipeline.New("OrderFlow")
	in, orders := pipeline.NewInput[Order](p, "Orders")
	valid := pipeline.Then(orders, stage.Verify("VerifyOrder", func(_ context.Context, o Order) (bool, error) {
		return o.Amount > 0, nil
	}))
	taxed := pipeline.Then(valid, stage.Map("CalcTax", func(ctx context.Context, o Order) (Order, error) {
		tm := time.NewTimer(cost) // a slow call, not synchronisation
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-ctx.Done():
		}
		return o, nil
	}, stage.Concurrency(4)))
	b := fanout.Broadcast(taxed, "Fanout", 2)
	pipeline.To(b[0], stage.Sink("SaveOrder", func(context.Context, Order) error { return nil }))
	pipeline.To(b[1], stage.Sink("NotifyUser", func(_ context.Context, o Order) error {
		if o.ID%53 == 0 {
			return fmt.Errorf("notify order %d: mailbox unavailable", o.ID)
		}
		return nil
	}, stage.OnError(stage.Skip)))
	require.NoError(t, p.Start(context.Background()))

	ctx, cancel := context.WithCancel(context.Background())
	fed := make(chan error, 1)
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		per := max(1, rate/100)
		batch := make([]Order, per)
		id := 0
		for {
			select {
			case <-ctx.Done():
				fed <- nil
				return
			case <-tick.C:
			}
			for i := range batch {
				id++
				batch[i] = Order{ID: id, Amount: int64(id % 20)} // one in 20 invalid
			}
			if _, err := in.SubmitBatch(ctx, batch); err != nil {
				if errors.Is(err, pipeline.ErrStopped) || ctx.Err() != nil {
					err = nil
				}
				fed <- err
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-fed)
		p.Stop()
		require.NoError(t, p.Wait())
	})
	return p
}
