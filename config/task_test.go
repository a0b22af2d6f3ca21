package config_test

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/kisflow/kisflow/config"
)

const taskFlowYAML = `kistype: flow
status: 1
flow_name: F1
flows:
  - fname: A
`

const taskFuncYAML = `kistype: func
fname: A
fmode: Calculate
`

func TestTaskAndScene(t *testing.T) {
	fsys := fstest.MapFS{
		"conf/flow-F1.yml": {Data: []byte(taskFlowYAML)},
		"conf/func-A.yml":  {Data: []byte(taskFuncYAML)},
		"conf/scene-s.yml": {Data: []byte("kistype: scene\nscene_name: s\nflows: [F1]\n")},
		"conf/task-nightly.yml": {Data: []byte(`kistype: task
task_name: nightly
scene: s
trigger:
  cron: "CRON_TZ=Asia/Shanghai 0 0 2 * * *"
overlap: queue
missed: catch-up
jitter: 30s
timeout: 10m
retries: 2
backoff: 5s
`)},
		"conf/task-tick.yml": {Data: []byte("kistype: task\ntask_name: tick\nflow: F1\ntrigger: {every: 2s, offset: 1s}\npaused: true\n")},
		"conf/task-once.yml": {Data: []byte("kistype: task\ntask_name: once\nflow: F1\ntrigger: {at: 2026-12-01T08:00:00Z}\n")},
	}
	s, err := config.LoadFS(fsys, "conf")
	if err != nil {
		t.Fatal(err)
	}
	want := &config.Task{Name: "nightly", Scene: "s", Trigger: config.TaskTrigger{Cron: "CRON_TZ=Asia/Shanghai 0 0 2 * * *"},
		Overlap: "queue", Missed: "catch-up", Jitter: 30 * time.Second, Timeout: 10 * time.Minute, Retries: 2, Backoff: 5 * time.Second}
	if got := s.Tasks["nightly"]; !reflect.DeepEqual(got, want) {
		t.Errorf("nightly = %+v, want %+v", got, want)
	}
	if got := s.Tasks["tick"]; got.Trigger.Every != 2*time.Second || got.Trigger.Offset != time.Second || !got.Paused {
		t.Errorf("tick = %+v", got)
	}
	if got := s.Tasks["once"].Trigger.At; !got.Equal(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("once at %s", got)
	}
	if got := s.Scenes["s"]; !reflect.DeepEqual(got, &config.Scene{Name: "s", Flows: []string{"F1"}}) {
		t.Errorf("scene = %+v", got)
	}
	if got := s.File(config.KindTask, "tick"); got != filepath.Join("conf", "task-tick.yml") {
		t.Errorf("File = %q", got)
	}

	// Export writes task-*.yaml and scene-*.yaml that load back equal.
	out := t.TempDir()
	if err := s.Export(out); err != nil {
		t.Fatal(err)
	}
	back, err := config.LoadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Tasks, s.Tasks) || !reflect.DeepEqual(back.Scenes, s.Scenes) {
		t.Errorf("exported tasks and scenes differ:\n%+v\n%+v", back.Tasks, s.Tasks)
	}
	data, err := config.Marshal(s.Tasks["tick"])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "every: 2s") || !strings.HasPrefix(string(data), "kistype: task\n") {
		t.Errorf("Marshal:\n%s", data)
	}
}

func TestTaskErrors(t *testing.T) {
	cases := []struct {
		name, doc string
		want      error
		msg       string
	}{
		{"task-a.yml", "kistype: task\ntask_name: a\n", config.ErrMissingField, `config: task-a.yml: task "a": flow: missing required field`},
		{"task-b.yml", "kistype: task\ntask_name: b\nflow: F1\nscene: s\n", config.ErrInvalidValue, `task "b": scene: invalid value: a task names a flow or a scene, not both`},
		{"task-c.yml", "kistype: task\ntask_name: c\nflow: F1\ntimeout: soon\n", config.ErrInvalidValue, `task "c": timeout: invalid value: "soon" (want a duration such as 10s)`},
		{"task-d.yml", "kistype: task\ntask_name: d\nflow: F1\noverlap: sometimes\n", config.ErrInvalidValue, `overlap: invalid value: "sometimes" (want skip, queue or allow)`},
		{"task-e.yml", "kistype: task\ntask_name: e\nflow: F1\ntrigger: {cron: '* * * * *', every: 1s}\n", config.ErrInvalidValue, "trigger: invalid value: set one of cron, every and at"},
		{"task-f.yml", "kistype: task\ntask_name: f\nflow: F1\ntrigger: {at: tomorrow}\n", config.ErrMalformed, "trigger.at: malformed: want an RFC 3339 time"},
		{"task-g.yml", "kistype: task\ntask_name: g\nflow: F1\nretries: -1\nmissed: later\n", config.ErrInvalidValue, "retries: invalid value: -1"},
		{"task-h.yml", "kistype: task\nflow: F1\n", config.ErrMissingField, "task_name: missing required field"},
		{"scene-a.yml", "kistype: scene\nscene_name: a\n", config.ErrMissingField, `scene "a": flows: missing required field`},
		{"scene-b.yml", "kistype: scene\nscene_name: b\nflows: [F1, F1]\n", config.ErrDuplicate, `flows[1]: duplicate name: "F1" repeats flows[0]`},
		{"bad.yml", "kistype: job\n", config.ErrUnknownKind, `(want flow, func, conn, global, task or scene)`},
	}
	for _, c := range cases {
		_, err := config.Parse(c.name, []byte(c.doc))
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: got %v, want %v containing %q", c.name, err, c.want, c.msg)
		}
	}

	// References: a task's flow or scene, a scene's flows.
	fsys := fstest.MapFS{
		"conf/flow-F1.yml":  {Data: []byte(taskFlowYAML)},
		"conf/func-A.yml":   {Data: []byte(taskFuncYAML)},
		"conf/scene-s.yml":  {Data: []byte("kistype: scene\nscene_name: s\nflows: [F1, F2]\n")},
		"conf/task-t1.yml":  {Data: []byte("kistype: task\ntask_name: t1\nflow: F9\n")},
		"conf/task-t2.yml":  {Data: []byte("kistype: task\ntask_name: t2\nscene: nope\n")},
		"conf/task-t3.yaml": {Data: []byte("kistype: task\ntask_name: t1\nflow: F1\n")},
	}
	_, err := config.LoadFS(fsys, "conf")
	for _, msg := range []string{
		`scene-s.yml: scene "s": flows[1]: unknown reference: flow "F2" is not defined`,
		`task-t1.yml: task "t1": flow: unknown reference: flow "F9" is not defined`,
		`task-t2.yml: task "t2": scene: unknown reference: scene "nope" is not defined`,
		`task_name: duplicate name`,
	} {
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("LoadFS: %v\nwant it to contain %q", err, msg)
		}
	}
}
