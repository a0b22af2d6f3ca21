package config

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// The kinds of scheduling document.
const (
	KindTask  Kind = "task"  // a Task
	KindScene Kind = "scene" // a Scene
)

// Scene is a `kistype: scene` document: a named set of flows that a task
// runs together.
type Scene struct {
	// Name is the scene's unique name (scene_name, required).
	Name string

	// Flows names the scene's flows (flows, at least one, no repeats).
	Flows []string
}

// Kind returns KindScene.
func (*Scene) Kind() Kind { return KindScene }

func (*Scene) item() {}

// Task is a `kistype: task` document: a flow or a scene plus when and how
// to run it (package schedule runs it).
type Task struct {
	// Name is the task's unique name (task_name, required).
	Name string

	// Flow or Scene names what the task runs (flow, scene; exactly one).
	Flow  string
	Scene string

	// Trigger says when it runs; all empty: on demand only.
	Trigger TaskTrigger

	// Overlap is skip, queue or allow ("" for the default, skip); Missed
	// is skip or catch-up ("" for skip).
	Overlap string
	Missed  string

	// Jitter, Timeout and Backoff are Go durations in the file ("30s").
	Jitter  time.Duration
	Timeout time.Duration
	Backoff time.Duration

	// Retries is how often a failed run is tried again (0 or more).
	Retries int

	// Paused tasks do not fire on their trigger.
	Paused bool
}

// TaskTrigger is a task's trigger: at most one of its fields is set.
type TaskTrigger struct {
	// Cron is a cron expression, seconds optional, with an optional
	// CRON_TZ= prefix (trigger.cron; checked by package schedule).
	Cron string
	// Every is a fixed interval (trigger.every, a Go duration), shifted by
	// Offset (trigger.offset).
	Every  time.Duration
	Offset time.Duration
	// At is a one-shot time (trigger.at, RFC 3339).
	At time.Time
}

// Kind returns KindTask.
func (*Task) Kind() Kind { return KindTask }

func (*Task) item() {}

// Overlap and missed-run policies a task may name.
var (
	overlaps = []string{"", "skip", "queue", "allow"}
	misseds  = []string{"", "skip", "catch-up"}
)

func (d *decoder) scene(m map[string]*yaml.Node) *Scene {
	s := new(Scene)
	s.Name, _ = d.str("scene_name", m["scene_name"])
	d.name = s.Name
	s.Flows, _ = d.strList("flows", m["flows"])
	return s
}

func (d *decoder) task(m map[string]*yaml.Node) *Task {
	t := new(Task)
	t.Name, _ = d.str("task_name", m["task_name"])
	d.name = t.Name
	t.Flow, _ = d.str("flow", m["flow"])
	t.Scene, _ = d.str("scene", m["scene"])
	if tr, ok := d.mapping("trigger", m["trigger"]); ok {
		t.Trigger.Cron, _ = d.str("trigger.cron", tr["cron"])
		t.Trigger.Every = d.duration("trigger.every", tr["every"])
		t.Trigger.Offset = d.duration("trigger.offset", tr["offset"])
		if at, _ := d.str("trigger.at", tr["at"]); at != "" {
			v, err := time.Parse(time.RFC3339, at)
			if err != nil {
				d.fail("trigger.at", ErrMalformed, "want an RFC 3339 time such as 2026-12-01T08:00:00Z: "+err.Error())
			}
			t.Trigger.At = v
		}
	}
	t.Overlap, _ = d.str("overlap", m["overlap"])
	t.Missed, _ = d.str("missed", m["missed"])
	t.Jitter = d.duration("jitter", m["jitter"])
	t.Timeout = d.duration("timeout", m["timeout"])
	t.Backoff = d.duration("backoff", m["backoff"])
	t.Retries, _ = d.integer("retries", m["retries"])
	t.Paused, _ = d.boolean("paused", m["paused"])
	return t
}

// checkScheduling checks a task or a scene on its own.
func checkScheduling(it Item, add func(field string, sentinel error, detail string)) {
	switch it := it.(type) {
	case *Scene:
		if it.Name == "" {
			add("scene_name", ErrMissingField, "")
		}
		if len(it.Flows) == 0 {
			add("flows", ErrMissingField, "a scene names at least one flow")
		}
		for i, f := range it.Flows {
			field := "flows[" + strconv.Itoa(i) + "]"
			if f == "" {
				add(field, ErrMissingField, "")
			} else if j := slices.Index(it.Flows, f); j < i {
				add(field, ErrDuplicate, fmt.Sprintf("%q repeats flows[%d]", f, j))
			}
		}
	case *Task:
		if it.Name == "" {
			add("task_name", ErrMissingField, "")
		}
		switch {
		case it.Flow == "" && it.Scene == "":
			add("flow", ErrMissingField, "a task names a flow or a scene")
		case it.Flow != "" && it.Scene != "":
			add("scene", ErrInvalidValue, "a task names a flow or a scene, not both")
		}
		if !slices.Contains(overlaps, it.Overlap) {
			add("overlap", ErrInvalidValue, strconv.Quote(it.Overlap)+" (want skip, queue or allow)")
		}
		if !slices.Contains(misseds, it.Missed) {
			add("missed", ErrInvalidValue, strconv.Quote(it.Missed)+" (want skip or catch-up)")
		}
		tr := it.Trigger
		set := 0
		for _, b := range []bool{tr.Cron != "", tr.Every != 0, !tr.At.IsZero()} {
			if b {
				set++
			}
		}
		if set > 1 {
			add("trigger", ErrInvalidValue, "set one of cron, every and at")
		}
		if tr.Every < 0 {
			add("trigger.every", ErrInvalidValue, tr.Every.String()+" (want more than 0)")
		}
		if tr.Offset != 0 && (tr.Offset < 0 || tr.Offset >= tr.Every) {
			add("trigger.offset", ErrInvalidValue, tr.Offset.String()+" (want 0 <= offset < every)")
		}
		for _, d := range []struct {
			field string
			v     time.Duration
		}{{"jitter", it.Jitter}, {"timeout", it.Timeout}, {"backoff", it.Backoff}} {
			if d.v < 0 {
				add(d.field, ErrInvalidValue, d.v.String()+" (want 0 or more)")
			}
		}
		if it.Retries < 0 {
			add("retries", ErrInvalidValue, strconv.Itoa(it.Retries)+" (want 0 or more)")
		}
	}
}

// validateScheduling checks the references of tasks and scenes: a task's
// flow or scene, a scene's flows.
func (s *Set) validateScheduling(broken map[itemKey]bool) []error {
	var errs []error
	for _, sc := range sortedValues(s.Scenes) {
		file := s.File(KindScene, sc.Name)
		errs = append(errs, checkItem(file, sc)...)
		for i, f := range sc.Flows {
			if _, ok := s.Flows[f]; f != "" && !ok && !broken[itemKey{KindFlow, f}] {
				errs = append(errs, &Error{File: file, Kind: KindScene, Name: sc.Name, Field: "flows[" + strconv.Itoa(i) + "]",
					Err: ErrUnknownReference, Detail: fmt.Sprintf("flow %q is not defined", f)})
			}
		}
	}
	for _, t := range sortedValues(s.Tasks) {
		file := s.File(KindTask, t.Name)
		errs = append(errs, checkItem(file, t)...)
		if _, ok := s.Flows[t.Flow]; t.Flow != "" && !ok && !broken[itemKey{KindFlow, t.Flow}] {
			errs = append(errs, &Error{File: file, Kind: KindTask, Name: t.Name, Field: "flow",
				Err: ErrUnknownReference, Detail: fmt.Sprintf("flow %q is not defined", t.Flow)})
		}
		if _, ok := s.Scenes[t.Scene]; t.Scene != "" && !ok && !broken[itemKey{KindScene, t.Scene}] {
			errs = append(errs, &Error{File: file, Kind: KindTask, Name: t.Name, Field: "scene",
				Err: ErrUnknownReference, Detail: fmt.Sprintf("scene %q is not defined", t.Scene)})
		}
	}
	return errs
}

// marshalScheduling builds the document of a task or a scene.
func marshalScheduling(it Item) *yaml.Node {
	switch it := it.(type) {
	case *Scene:
		if it != nil {
			return mappingNode(
				field{"kistype", strNode(string(KindScene))},
				field{"scene_name", strNode(it.Name)},
				field{"flows", strListNode(it.Flows)})
		}
	case *Task:
		if it != nil {
			tr := mappingNode()
			if it.Trigger.Cron != "" {
				tr = mappingNode(field{"cron", strNode(it.Trigger.Cron)})
			} else if it.Trigger.Every != 0 {
				tr = mappingNode(field{"every", strNode(it.Trigger.Every.String())}, field{"offset", strNode(it.Trigger.Offset.String())})
			} else if !it.Trigger.At.IsZero() {
				tr = mappingNode(field{"at", strNode(it.Trigger.At.Format(time.RFC3339Nano))})
			}
			return mappingNode(
				field{"kistype", strNode(string(KindTask))},
				field{"task_name", strNode(it.Name)},
				field{"flow", strNode(it.Flow)},
				field{"scene", strNode(it.Scene)},
				field{"trigger", tr},
				field{"overlap", strNode(it.Overlap)},
				field{"missed", strNode(it.Missed)},
				field{"jitter", strNode(it.Jitter.String())},
				field{"timeout", strNode(it.Timeout.String())},
				field{"retries", intNode(it.Retries)},
				field{"backoff", strNode(it.Backoff.String())},
				field{"paused", boolNode(it.Paused)})
		}
	}
	return nil
}
