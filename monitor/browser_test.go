package monitor_test

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/internal/testcheck"
	"github.com/kisflow/kisflow/monitor"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// TestBrowser renders the page of a live pipeline in headless chromium,
// checks the DOM and saves a screenshot. It runs when KISFLOW_BROWSER=1
// (scripts/browser-test.sh installs chromium and sets it); KISFLOW_CHROMIUM
// names the binary (default: chromium on PATH) and KISFLOW_SCREENSHOT the
// picture (default: docs/monitor.png).
func TestBrowser(t *testing.T) {
	bin := testcheck.Chromium(t)
	shot := os.Getenv("KISFLOW_SCREENSHOT")
	if shot == "" {
		shot = filepath.Join("..", "docs", "monitor.png")
	}

	p := startLive(t, 2500, 2*time.Millisecond)
	finished := pipeline.New("CalStuAvgScore")
	scores := pipeline.FromSlice(finished, "students", []int{80, 90, 100, 55, 40})
	avg := pipeline.Then(scores, stage.Map("AvgStuScore", func(_ context.Context, s int) (int, error) { return s / 3, nil }))
	pipeline.To(avg, stage.Sink("PrintStuAvgScore", func(context.Context, int) error { return nil }))
	require.NoError(t, finished.Run(t.Context()))
	mon := monitor.New(monitor.Title("KisFlow monitor"))
	mon.Add(p)
	mon.Add(finished)
	srv := serve(t, mon)
	u, err := url.Parse(srv.URL + "/")
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", u.Hostname(), "chromium is only ever pointed at 127.0.0.1")

	dom := chromium(t, bin, u, "--dump-dom")
	for _, name := range liveStages {
		re := regexp.MustCompile(`<g class="node" data-node="` + regexp.QuoteMeta(name) + `"[^>]*data-rate="([0-9.]+)"`)
		m := re.FindSubmatch(dom)
		if !assert.NotNil(t, m, "node %s with a numeric rows/s", name) {
			continue
		}
		_, err := strconv.ParseFloat(string(m[1]), 64)
		assert.NoError(t, err, name)
		assert.Contains(t, string(dom), ">"+name+"<", "visible name of %s", name)
	}
	assert.Regexp(t, `>[0-9][0-9,.]*[kM]? rows/s<`, string(dom))
	assert.Contains(t, string(dom), `data-state="running"`)
	assert.Regexp(t, `<section class="flow" data-flow="CalStuAvgScore" data-state="done"`, string(dom))
	assert.Regexp(t, `data-node="PrintStuAvgScore" [^>]*data-state="done"`, string(dom))
	assert.Regexp(t, `data-node="NotifyUser"[^>]*data-failed="[1-9]`, string(dom), "NotifyUser's failures are shown")

	require.NoError(t, os.MkdirAll(filepath.Dir(shot), 0o755))
	abs, err := filepath.Abs(shot)
	require.NoError(t, err)
	chromium(t, bin, u, "--screenshot="+abs, "--window-size=1280,800", "--hide-scrollbars")
	png, err := os.ReadFile(abs)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")), "a PNG")
	t.Logf("screenshot: %s (%d bytes)", abs, len(png))
}

// chromium runs headless chromium on u (see testcheck.Headless).
func chromium(t *testing.T, bin string, u *url.URL, args ...string) []byte {
	t.Helper()
	return testcheck.Headless(t, bin, u, 5*time.Second, args...)
}
