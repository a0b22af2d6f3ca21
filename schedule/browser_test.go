package schedule_test

import (
	"bytes"
	"context"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/flow"
	"github.com/kisflow/kisflow/internal/testcheck"
	"github.com/kisflow/kisflow/schedule"
)

// TestBrowserTasks renders the tasks page of a scheduler with a history of
// runs in headless chromium, checks the DOM and saves a screenshot. It
// runs when KISFLOW_BROWSER=1 (scripts/browser-test.sh installs chromium
// and sets it); KISFLOW_CHROMIUM names the binary (default: chromium on
// PATH) and KISFLOW_TASKS_SCREENSHOT the picture (default: docs/tasks.png).
func TestBrowserTasks(t *testing.T) {
	bin := testcheck.Chromium(t)
	shot := os.Getenv("KISFLOW_TASKS_SCREENSHOT")
	if shot == "" {
		shot = filepath.Join("..", "docs", "tasks.png")
	}

	s := history(t)
	h := schedule.NewHandler(s, schedule.PageTitle("KisFlow tasks"), schedule.PageLink("Flows", "/monitor/"))
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	u, err := url.Parse(srv.URL + "/")
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", u.Hostname(), "chromium is only ever pointed at 127.0.0.1")

	dom := string(chromium(t, bin, u, "--dump-dom"))
	assert.Regexp(t, `<tr class="task" data-task="scores" data-next="2026-11-30T12:0[0-9]:[0-9]{2}Z" data-ratio="1" data-state="idle"`, dom)
	assert.Regexp(t, `<tr class="task" data-task="nightly" data-next="2026-11-30T18:00:00Z" data-ratio="0"`, dom, "02:00 in Shanghai")
	assert.Regexp(t, `<tr class="task" data-task="reindex" data-next="" data-ratio="0" data-state="paused"`, dom)
	for _, outcome := range []string{"ok", "failed", "timeout"} {
		assert.Regexp(t, `<tr class="run[^"]*" data-run="[^"]+" data-task="[a-z]+" data-outcome="`+outcome+`"`, dom, outcome)
		assert.Regexp(t, `<rect class="bar" [^>]*data-outcome="`+outcome+`"`, dom, "chart bar for %s", outcome)
	}
	assert.Len(t, regexp.MustCompile(`<rect class="bar" `).FindAllString(dom, -1), 8, "one bar per run")
	assert.Regexp(t, `<li class="executor" data-executor="ex-1" data-health="ok"`, dom)
	assert.Regexp(t, `<pre id="log" class="" data-run="[^"]+">[^<]*claimed firing`, dom, "the latest run's log")
	assert.Contains(t, dom, `<a href="/monitor/">Flows</a>`)
	assert.Contains(t, dom, `<div id="banner" class="">`, "the banner is hidden")
	assert.Contains(t, dom, `<span id="dot" class="live">`)

	require.NoError(t, os.MkdirAll(filepath.Dir(shot), 0o755))
	abs, err := filepath.Abs(shot)
	require.NoError(t, err)
	chromium(t, bin, u, "--screenshot="+abs, "--window-size=1280,900", "--hide-scrollbars")
	png, err := os.ReadFile(abs)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")), "a PNG")
	t.Logf("screenshot: %s (%d bytes)", abs, len(png))
}

// history runs a few tasks on a fake clock: six cron runs of a scene that
// take 0.4 to 2.4 s, a failing run and a timed-out one.
func history(t *testing.T) *schedule.Scheduler {
	t.Helper()
	e := newEnv(t)
	c := newClock()
	var n atomic.Int64
	flow.MustRegister(e.reg, "Work", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		c.Advance(time.Duration(400*(1+n.Add(1)%5)) * time.Millisecond) // the run takes time on the fake clock
		for _, r := range rows {
			h.CommitRow(r)
		}
		return nil
	})
	require.NoError(t, e.reg.AddConfig(&config.Func{Name: "Work", Mode: config.ModeCalculate},
		&config.Flow{Name: "Work", Status: config.StatusEnabled, Funcs: []config.FlowFunc{{Name: "Work"}, {Name: "Count"}}}))
	done := make(runs, 32)
	s := start(t, e, c, nil, done.option(), schedule.ExecutorName("ex-1"), schedule.Grace(time.Second), schedule.LeaseTTL(time.Hour))
	require.NoError(t, s.AddScene("students", "Double", "Work"))
	require.NoError(t, s.Add(schedule.Task{Name: "scores", Scene: "students", Trigger: schedule.Trigger{Cron: "0 * * * * *"}, Feed: feedRows}))
	require.NoError(t, s.Add(schedule.Task{Name: "nightly", Flow: "Fail", Trigger: schedule.Trigger{Cron: "CRON_TZ=Asia/Shanghai 0 0 2 * * *"}, Feed: feedRows}))
	require.NoError(t, s.Add(schedule.Task{Name: "reindex", Flow: "Hold", Trigger: schedule.Trigger{Every: time.Hour}, Timeout: 3 * time.Second, Paused: true, Feed: feedRows}))
	for i := 1; i <= 6; i++ {
		id, err := s.Trigger("scores")
		require.NoError(t, err)
		r := done.next(t)
		require.Equal(t, schedule.OutcomeOK, r.Outcome, "%s: %s", id, r.Error)
	}
	_, err := s.Trigger("nightly")
	require.NoError(t, err)
	require.Equal(t, schedule.OutcomeFailed, done.next(t).Outcome)
	_, err = s.Trigger("reindex")
	require.NoError(t, err)
	<-e.gate.started
	c.waitTimer(t, c.Now().Add(3*time.Second))
	c.Advance(3 * time.Second)
	c.waitTimer(t, c.Now().Add(time.Second))
	c.Advance(time.Second)
	require.Equal(t, schedule.OutcomeTimeout, done.next(t).Outcome)
	return s
}

// chromium runs headless chromium on u (see testcheck.Headless).
func chromium(t *testing.T, bin string, u *url.URL, args ...string) []byte {
	t.Helper()
	return testcheck.Headless(t, bin, u, 3*time.Second, args...)
}
