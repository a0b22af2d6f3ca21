package schedule

import (
	"errors"
	"maps"
	"slices"
	"strconv"

	"github.com/kisflow/kisflow/config"
)

// TaskFromConfig converts a `kistype: task` document into a Task (without
// a Feed).
func TaskFromConfig(c *config.Task) Task {
	return Task{
		Name: c.Name, Flow: c.Flow, Scene: c.Scene,
		Trigger: Trigger{Cron: c.Trigger.Cron, Every: c.Trigger.Every, Offset: c.Trigger.Offset, At: c.Trigger.At},
		Overlap: Overlap(c.Overlap), Missed: Missed(c.Missed),
		Jitter: c.Jitter, Timeout: c.Timeout, Retries: c.Retries, Backoff: c.Backoff, Paused: c.Paused,
	}
}

// Configure adds the scenes and tasks of set (`kistype: scene` and
// `kistype: task`), replacing those of the same names, and removes the
// tasks an earlier Configure added that set no longer holds; feeds gives
// tasks their Feed, by task name. It checks everything first and changes
// nothing on error; each error is a *config.Error naming the file, the
// task and the field (a bad cron expression: trigger.cron). It is what a
// Reload hook calls after reading the configuration again.
func (s *Scheduler) Configure(set *config.Set, feeds map[string]Feed) error {
	var errs []error
	flows := s.reg.Config().Flows
	for _, name := range slices.Sorted(maps.Keys(set.Scenes)) {
		sc := set.Scenes[name]
		for i, f := range sc.Flows {
			if _, ok := flows[f]; !ok {
				errs = append(errs, &config.Error{File: set.File(config.KindScene, name), Kind: config.KindScene, Name: name,
					Field: "flows[" + strconv.Itoa(i) + "]", Err: ErrUnknownFlow, Detail: "flow " + strconv.Quote(f) + " is not in the registry"})
			}
		}
	}
	tasks := make([]Task, 0, len(set.Tasks))
	for _, name := range slices.Sorted(maps.Keys(set.Tasks)) {
		c := set.Tasks[name]
		t := TaskFromConfig(c)
		t.Feed = feeds[name]
		fail := func(field string, err error) {
			errs = append(errs, &config.Error{File: set.File(config.KindTask, name), Kind: config.KindTask, Name: name,
				Field: field, Err: err})
		}
		if _, err := t.check(); err != nil {
			field := "trigger"
			switch {
			case c.Trigger.Cron != "":
				field = "trigger.cron"
			case c.Trigger.Every != 0:
				field = "trigger.every"
			}
			if !errors.Is(err, ErrBadTrigger) {
				field = ""
			}
			fail(field, err)
			continue
		}
		switch {
		case t.Flow != "":
			if _, ok := flows[t.Flow]; !ok {
				fail("flow", errors.Join(ErrUnknownFlow, errors.New("flow "+strconv.Quote(t.Flow)+" is not in the registry")))
				continue
			}
		case set.Scenes[t.Scene] == nil && !s.hasScene(t.Scene):
			fail("scene", errors.Join(ErrUnknownScene, errors.New("scene "+strconv.Quote(t.Scene)+" is not defined")))
			continue
		}
		tasks = append(tasks, t)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, name := range slices.Sorted(maps.Keys(set.Scenes)) {
		if err := s.AddScene(name, set.Scenes[name].Flows...); err != nil {
			return err
		}
	}
	keep := make(map[string]bool, len(tasks))
	for _, t := range tasks {
		if err := s.Add(t); err != nil {
			return err
		}
		keep[t.Name] = true
	}
	s.mu.Lock()
	prev := s.configured
	s.configured = keep
	s.mu.Unlock()
	for name := range prev {
		if !keep[name] {
			_ = s.Remove(name)
		}
	}
	return nil
}

func (s *Scheduler) hasScene(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.scenes[name]
	return ok
}
