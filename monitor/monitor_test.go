package monitor_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/monitor"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// counted builds a pipeline fed by an Input: Input → keep (drops odd rows)
// → sink, which closes seen once it has received want rows.
func counted(want int) (*pipeline.Pipeline, *pipeline.Input[int], chan struct{}) {
	p := pipeline.New("counted")
	in, s := pipeline.NewInput[int](p, "in")
	s = pipeline.Then(s, stage.Verify("keep", func(_ context.Context, v int) (bool, error) { return v%2 == 0, nil }))
	seen := make(chan struct{})
	n := 0
	pipeline.To(s, stage.Sink("sink", func(context.Context, int) error {
		n++ // one worker: no race
		if n == want {
			close(seen)
		}
		return nil
	}))
	return p, in, seen
}

func TestFlowsReflectLivePipeline(t *testing.T) {
	p, in, seen := counted(50)
	mon := monitor.New(monitor.Title("test"))
	mon.Add(p)
	srv := serve(t, mon)

	s := snapshot(t, srv)
	require.Len(t, s.Flows, 1)
	assert.Equal(t, "idle", s.Flows[0].State)
	assert.Equal(t, "test", s.Title)
	assert.Equal(t, int64(1000), s.RefreshMS)

	require.NoError(t, p.Start(t.Context()))
	rows := make([]int, 100)
	for i := range rows {
		rows[i] = i
	}
	_, err := in.SubmitBatch(t.Context(), rows)
	require.NoError(t, err)
	<-seen // the sink has the 50 even rows: keep has counted them all

	s = snapshot(t, srv)
	f := s.Flows[0]
	assert.Equal(t, "counted", f.Name)
	assert.Equal(t, "running", f.State)
	assert.Equal(t, int64(100), f.In)
	assert.Equal(t, int64(50), f.Filtered)
	assert.Equal(t, "running", node(t, f, "in").State)
	keep := node(t, f, "keep")
	assert.Equal(t, "Verify", keep.Kind)
	assert.Equal(t, int64(100), keep.In)
	assert.Equal(t, int64(50), keep.Out)
	assert.Equal(t, int64(50), keep.Filtered)
	assert.Positive(t, s.Uptime)
	assert.False(t, s.Time.IsZero())

	p.Stop()
	require.NoError(t, p.Wait())
	s2 := snapshot(t, srv)
	f = s2.Flows[0]
	assert.Equal(t, "done", f.State)
	assert.Equal(t, f.ID, s.Flows[0].ID)
	assert.Equal(t, int64(50), f.Delivered)
	// A node counts rows delivered once their batch is on the next buffer,
	// so the input's count is exact once the run is over.
	assert.Equal(t, int64(100), node(t, f, "in").Out)
	sink := node(t, f, "sink")
	assert.Equal(t, "done", sink.State)
	assert.Equal(t, "Sink", sink.Kind)
	assert.Equal(t, int64(50), sink.In)
	assert.Greater(t, s2.Uptime, s.Uptime)

	st := p.Stats()
	require.Len(t, f.Edges, len(st.Edges))
	for i, e := range f.Edges {
		assert.Equal(t, st.Edges[i].Name, e.Name)
		assert.Equal(t, st.Edges[i].From, e.From)
		assert.Equal(t, st.Edges[i].To, e.To)
		assert.Equal(t, "block", e.Policy)
		assert.Equal(t, st.Edges[i].Capacity, e.Capacity)
		assert.Equal(t, 0, e.Depth)
		assert.Equal(t, st.Edges[i].Sent, e.Sent)
	}
}

func TestSchema(t *testing.T) {
	p := pipeline.New("failing")
	s := pipeline.FromSlice(p, "rows", []int{1, 2, 3})
	pipeline.To(s, stage.Sink("boom", func(context.Context, int) error { return assert.AnError }, stage.OnError(stage.Skip)))
	require.NoError(t, p.Run(t.Context()))
	mon := monitor.New()
	mon.Add(p)
	srv := serve(t, mon)

	resp, body := get(t, srv.URL+"/api/flows")
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(body, &doc))
	assert.ElementsMatch(t, []string{"time", "uptime_s", "title", "refresh_ms", "flows"}, keys(doc))
	flow := doc["flows"].([]any)[0].(map[string]any)
	assert.ElementsMatch(t, []string{"id", "name", "state", "in", "delivered", "filtered", "dropped", "failed", "dead_lettered", "abandoned", "nodes", "edges"}, keys(flow))
	nodes := flow["nodes"].([]any)
	assert.ElementsMatch(t, []string{"name", "kind", "concurrency", "ordered", "state", "dead_letter", "in", "out",
		"delivered", "abandoned", "filtered", "failed", "retried", "dead_lettered", "batches", "busy_ns", "last_error"}, keys(nodes[1].(map[string]any)))
	assert.NotContains(t, keys(nodes[0].(map[string]any)), "last_error", "omitted when empty")
	assert.Equal(t, assert.AnError.Error(), nodes[1].(map[string]any)["last_error"])
	assert.EqualValues(t, 3, nodes[1].(map[string]any)["failed"])
	edge := flow["edges"].([]any)[0].(map[string]any)
	assert.ElementsMatch(t, []string{"name", "from", "to", "policy", "capacity", "depth", "sent", "dropped", "blocked_ns"}, keys(edge))
	assert.Equal(t, "rows->boom", edge["name"])
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestPage(t *testing.T) {
	srv := serve(t, monitor.New())
	resp, body := get(t, srv.URL+"/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'")
	page := string(body)
	assert.Contains(t, page, `fetch("api/flows"`)
	// Self-contained: the only URL in it is the SVG namespace.
	rest := strings.ReplaceAll(page, `"http://www.w3.org/2000/svg"`, "")
	assert.NotContains(t, rest, "http://")
	assert.NotContains(t, rest, "https://")
	assert.NotContains(t, rest, "//cdn")
}

func TestRoutes(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/monitor/", http.StripPrefix("/monitor", monitor.New()))
	srv := serve(t, mux)
	for path, code := range map[string]int{
		"/monitor/":          http.StatusOK,
		"/monitor/api/flows": http.StatusOK,
		"/monitor/nothing":   http.StatusNotFound,
	} {
		resp, _ := get(t, srv.URL+path)
		assert.Equal(t, code, resp.StatusCode, path)
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Post(srv.URL+"/monitor/api/flows", "text/plain", strings.NewReader("x"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestAddRemove(t *testing.T) {
	a, b := pipeline.New("a"), pipeline.New("a")
	mon := monitor.New()
	assert.Empty(t, mon.Snapshot().Flows)
	mon.Add(a)
	mon.Add(b)
	mon.Add(a) // no effect
	s := mon.Snapshot()
	require.Len(t, s.Flows, 2)
	assert.NotEqual(t, s.Flows[0].ID, s.Flows[1].ID, "pipelines of one name are told apart")
	idB := s.Flows[1].ID
	mon.Remove(a)
	mon.Remove(a) // no effect
	s = mon.Snapshot()
	require.Len(t, s.Flows, 1)
	assert.Equal(t, idB, s.Flows[0].ID)
	mon.Remove(b)
	assert.Empty(t, mon.Snapshot().Flows)
	assert.NotNil(t, mon.Snapshot().Flows, "an empty list, not null")

	assert.Panics(t, func() { monitor.Refresh(0) })
}

func TestLinks(t *testing.T) {
	m := monitor.New(monitor.Link("Tasks", "/tasks/"))
	snap := m.Snapshot()
	require.Equal(t, [][2]string{{"Tasks", "/tasks/"}}, snap.Links)
	srv := serve(t, m)
	_, body := get(t, srv.URL+"/api/flows")
	assert.Contains(t, string(body), `"links":[["Tasks","/tasks/"]]`)
	_, page := get(t, srv.URL+"/")
	assert.Contains(t, string(page), `<nav id="nav"></nav>`)
	assert.NotContains(t, string(monitorSnapshotJSON(t, monitor.New())), "links", "no links, no field")
}

func monitorSnapshotJSON(t *testing.T, m *monitor.Monitor) []byte {
	t.Helper()
	srv := serve(t, m)
	_, body := get(t, srv.URL+"/api/flows")
	return body
}
