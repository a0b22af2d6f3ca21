package schedule_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/schedule"
)

const secret = "s3cr3t-t0ken-value"

type api struct {
	t *testing.T
	h http.Handler
}

// do sends a request with the given bearer token ("" for none) and
// returns the status and body.
func (a api) do(method, path, token, body string) (int, string) {
	a.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	b, err := io.ReadAll(rec.Result().Body)
	require.NoError(a.t, err)
	return rec.Code, string(b)
}

var mutating = []struct{ method, path, body string }{
	{"POST", "/api/tasks/t/trigger", ""},
	{"POST", "/api/tasks/t/pause", ""},
	{"POST", "/api/tasks/t/resume", ""},
	{"PUT", "/api/tasks/t/trigger", `{"every":"5s"}`},
	{"POST", "/api/runs/x/stop", ""},
	{"POST", "/api/reload", ""},
	{"POST", "/api/drain", ""},
}

var reads = []string{"/", "/api/tasks", "/api/scenes", "/api/runs", "/api/executors", "/api/reports?since=1h"}

func TestAPISecurity(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	s := start(t, e, c, []schedule.Task{{Name: "t", Flow: "Double", Trigger: every2s, Feed: feedRows}})
	reloaded := 0
	open := api{t, schedule.NewHandler(s)}
	locked := api{t, schedule.NewHandler(s, schedule.Token(secret), schedule.Reload(func(context.Context) error { reloaded++; return nil }))}

	for _, m := range mutating {
		code, body := open.do(m.method, m.path, secret, m.body)
		assert.Equal(t, http.StatusForbidden, code, "%s %s without a configured token: read-only", m.method, m.path)
		assert.Contains(t, body, "read-only")
		code, _ = locked.do(m.method, m.path, "", m.body)
		assert.Equal(t, http.StatusUnauthorized, code, "%s %s without a token", m.method, m.path)
		code, _ = locked.do(m.method, m.path, secret+"x", m.body)
		assert.Equal(t, http.StatusUnauthorized, code, "%s %s with a wrong token", m.method, m.path)
		code, _ = locked.do(m.method, m.path, secret[:len(secret)-1], m.body)
		assert.Equal(t, http.StatusUnauthorized, code, "%s %s with a prefix of the token", m.method, m.path)
	}
	req := httptest.NewRequest("POST", "/api/reload", nil)
	req.Header.Set("Authorization", "Basic "+secret)
	rec := httptest.NewRecorder()
	locked.h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusUnauthorized, rec.Code, "only a bearer token")
	assert.Zero(t, reloaded)

	for _, path := range reads {
		code, body := locked.do("GET", path, "", "")
		assert.Equal(t, http.StatusOK, code, path)
		assert.NotContains(t, body, secret, "%s leaks the token", path)
		code, body = locked.do("GET", path, secret, "")
		assert.Equal(t, http.StatusOK, code, path)
		assert.NotContains(t, body, secret, "%s leaks the token", path)
	}
	code, _ := locked.do("POST", "/api/reload", secret, "")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, 1, reloaded)
	code, _ = locked.do("DELETE", "/api/tasks", secret, "")
	assert.Equal(t, http.StatusMethodNotAllowed, code)
}

func TestAPI(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	done := make(runs, 8)
	s := start(t, e, c, []schedule.Task{{Name: "t", Flow: "Double", Trigger: every2s, Feed: feedRows}}, done.option())
	a := api{t, schedule.NewHandler(s, schedule.Token(secret), schedule.Reload(func(context.Context) error { return errors.New("bad yaml") }))}

	code, body := a.do("POST", "/api/tasks/t/trigger", secret, "")
	require.Equal(t, http.StatusAccepted, code, body)
	r := done.next(t)
	require.Equal(t, schedule.OutcomeOK, r.Outcome)

	code, body = a.do("GET", "/api/runs?task=t", "", "")
	require.Equal(t, http.StatusOK, code)
	var list struct{ Running, Runs []schedule.Run }
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	require.Len(t, list.Runs, 1)
	assert.Equal(t, r.ID, list.Runs[0].ID)

	code, body = a.do("GET", "/api/runs/"+r.ID, "", "")
	require.Equal(t, http.StatusOK, code)
	var one struct {
		Run schedule.Run
		Log []string
	}
	require.NoError(t, json.Unmarshal([]byte(body), &one))
	assert.Equal(t, r.ID, one.Run.ID)
	assert.NotEmpty(t, one.Log)
	assert.Contains(t, strings.Join(one.Log, "\n"), "Double: level=INFO msg=fed rows=3", "the feed's log lines")

	code, body = a.do("GET", "/api/tasks", "", "")
	require.Equal(t, http.StatusOK, code)
	var tasks struct{ Tasks []schedule.TaskView }
	require.NoError(t, json.Unmarshal([]byte(body), &tasks))
	require.Len(t, tasks.Tasks, 1)
	assert.Equal(t, 1, tasks.Tasks[0].Report.Runs)
	assert.Equal(t, 1.0, tasks.Tasks[0].Report.SuccessRatio)
	assert.Equal(t, t0.Add(2*time.Second), tasks.Tasks[0].Next[0])
	assert.Equal(t, "every 2s", tasks.Tasks[0].Trigger)

	code, body = a.do("PUT", "/api/tasks/t/trigger", secret, `{"cron":"CRON_TZ=Asia/Shanghai 0 0 8 * * *"}`)
	require.Equal(t, http.StatusOK, code, body)
	next, _ := s.Next("t", 1)
	assert.Equal(t, []time.Time{time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}, next, "08:00 in Shanghai")
	code, body = a.do("PUT", "/api/tasks/t/trigger", secret, `{"cron":"99 * * * *"}`)
	assert.Equal(t, http.StatusBadRequest, code, body)
	code, _ = a.do("PUT", "/api/tasks/t/trigger", secret, `{"every":"soon"}`)
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = a.do("PUT", "/api/tasks/t/trigger", secret, `{"evry":"5s"}`)
	assert.Equal(t, http.StatusBadRequest, code, "unknown field")

	code, _ = a.do("POST", "/api/tasks/t/pause", secret, "")
	assert.Equal(t, http.StatusOK, code)
	assert.True(t, s.Tasks()[0].Paused)
	code, _ = a.do("POST", "/api/tasks/t/resume", secret, "")
	assert.Equal(t, http.StatusOK, code)
	assert.False(t, s.Tasks()[0].Paused)

	code, _ = a.do("POST", "/api/tasks/nope/trigger", secret, "")
	assert.Equal(t, http.StatusNotFound, code)
	code, _ = a.do("GET", "/api/runs/nope", "", "")
	assert.Equal(t, http.StatusNotFound, code)
	code, _ = a.do("POST", "/api/runs/nope/stop", secret, "")
	assert.Equal(t, http.StatusNotFound, code)
	code, body = a.do("POST", "/api/reload", secret, "")
	assert.Equal(t, http.StatusUnprocessableEntity, code)
	assert.Contains(t, body, "bad yaml")
	code, _ = a.do("GET", "/api/runs?limit=x", "", "")
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = a.do("GET", "/api/reports?since=-1h", "", "")
	assert.Equal(t, http.StatusBadRequest, code)

	code, body = a.do("GET", "/api/executors", "", "")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"self":true`)
	code, _ = a.do("POST", "/api/drain", secret, "")
	assert.Equal(t, http.StatusOK, code)
	code, _ = a.do("POST", "/api/tasks/t/trigger", secret, "")
	assert.Equal(t, http.StatusConflict, code, "a drained executor")

	code, body = a.do("GET", "/", "", "")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "<title>KisFlow tasks</title>")
}

func TestListenLoopback(t *testing.T) {
	ln, err := schedule.Listen(":0")
	require.NoError(t, err)
	defer ln.Close()
	host, _, err := net.SplitHostPort(ln.Addr().String())
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", host, "no host: loopback only")
	_, err = schedule.Listen("nonsense")
	assert.Error(t, err)
}
