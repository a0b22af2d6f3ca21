package config

import (
	"errors"
	"maps"
	"slices"
)

// Set holds a complete configuration: flows, functions and connectors by
// name, the global settings, and the file each item came from.
//
// The zero Set is empty and ready to use. Items are held by pointer; Add
// and Merge do not copy them. Flows whose status is 0 are kept but are
// disabled (see Flow.Enabled): a consumer must skip them. A Set may be read
// by several goroutines at once, but not read while it is changed.
type Set struct {
	Flows  map[string]*Flow  // by flow_name
	Funcs  map[string]*Func  // by fname
	Conns  map[string]*Conn  // by cname
	Global *Global           // nil when no global document was loaded
	Tasks  map[string]*Task  // by task_name
	Scenes map[string]*Scene // by scene_name

	files map[itemKey]string
}

// itemKey identifies an item within a Set.
type itemKey struct {
	kind Kind
	name string // "" for the global settings
}

func keyOf(it Item) itemKey {
	switch it := it.(type) {
	case *Flow:
		if it != nil {
			return itemKey{KindFlow, it.Name}
		}
	case *Func:
		if it != nil {
			return itemKey{KindFunc, it.Name}
		}
	case *Conn:
		if it != nil {
			return itemKey{KindConn, it.Name}
		}
	case *Global:
		if it != nil {
			return itemKey{kind: KindGlobal}
		}
	case *Task:
		if it != nil {
			return itemKey{KindTask, it.Name}
		}
	case *Scene:
		if it != nil {
			return itemKey{KindScene, it.Name}
		}
	}
	return itemKey{}
}

// nameField returns the YAML field that holds the name of an item of kind
// k.
func nameField(k Kind) string {
	switch k {
	case KindFlow:
		return "flow_name"
	case KindFunc:
		return "fname"
	case KindConn:
		return "cname"
	case KindTask:
		return "task_name"
	case KindScene:
		return "scene_name"
	}
	return "kistype"
}

// File returns the file the item of the given kind and name was read from,
// or "" if unknown. The name of the global settings is "".
func (s *Set) File(kind Kind, name string) string {
	return s.files[itemKey{kind, name}]
}

// Add checks it as Parse does and adds it to the Set, recording file as
// its origin. It fails with ErrDuplicate if the Set already holds an item
// of the same kind and name (or a Global), and leaves the Set unchanged on
// any error.
func (s *Set) Add(file string, it Item) error {
	if errs := checkItem(file, it); len(errs) > 0 {
		return errors.Join(errs...)
	}
	k := keyOf(it)
	if s.has(k) {
		return duplicate(file, k, s.File(k.kind, k.name))
	}
	s.put(file, it)
	return nil
}

// Merge adds every item of other to s, as Add does. On any error,
// such as a name both Sets define, s is left unchanged and every problem
// is reported.
func (s *Set) Merge(other *Set) error {
	var (
		errs  []error
		items []Item
		seen  = make(map[itemKey]bool)
	)
	for _, it := range other.items() {
		k := keyOf(it)
		file := other.File(k.kind, k.name)
		if e := checkItem(file, it); len(e) > 0 {
			errs = append(errs, e...)
			continue
		}
		if s.has(k) {
			errs = append(errs, duplicate(file, k, s.File(k.kind, k.name)))
			continue
		}
		if seen[k] {
			errs = append(errs, duplicate(file, k, file))
			continue
		}
		seen[k] = true
		items = append(items, it)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, it := range items {
		k := keyOf(it)
		s.put(other.File(k.kind, k.name), it)
	}
	return nil
}

func duplicate(file string, k itemKey, other string) error {
	detail := "already in the set"
	if other != "" {
		detail = "also defined in " + other
	}
	return &Error{File: file, Kind: k.kind, Name: k.name, Field: nameField(k.kind), Err: ErrDuplicate, Detail: detail}
}

func (s *Set) has(k itemKey) bool {
	switch k.kind {
	case KindFlow:
		_, ok := s.Flows[k.name]
		return ok
	case KindFunc:
		_, ok := s.Funcs[k.name]
		return ok
	case KindConn:
		_, ok := s.Conns[k.name]
		return ok
	case KindGlobal:
		return s.Global != nil
	case KindTask:
		_, ok := s.Tasks[k.name]
		return ok
	case KindScene:
		_, ok := s.Scenes[k.name]
		return ok
	}
	return false
}

// put stores a checked item.
func (s *Set) put(file string, it Item) {
	switch it := it.(type) {
	case *Flow:
		if s.Flows == nil {
			s.Flows = make(map[string]*Flow)
		}
		s.Flows[it.Name] = it
	case *Func:
		if s.Funcs == nil {
			s.Funcs = make(map[string]*Func)
		}
		s.Funcs[it.Name] = it
	case *Conn:
		if s.Conns == nil {
			s.Conns = make(map[string]*Conn)
		}
		s.Conns[it.Name] = it
	case *Global:
		s.Global = it
	case *Task:
		if s.Tasks == nil {
			s.Tasks = make(map[string]*Task)
		}
		s.Tasks[it.Name] = it
	case *Scene:
		if s.Scenes == nil {
			s.Scenes = make(map[string]*Scene)
		}
		s.Scenes[it.Name] = it
	}
	if s.files == nil {
		s.files = make(map[itemKey]string)
	}
	s.files[keyOf(it)] = file
}

// items returns every non-nil item: the global settings, then flows,
// functions, connectors, scenes and tasks, each sorted by name.
func (s *Set) items() []Item {
	var out []Item
	if s.Global != nil {
		out = append(out, s.Global)
	}
	for _, f := range s.sortedFlows() {
		out = append(out, f)
	}
	for _, f := range s.sortedFuncs() {
		out = append(out, f)
	}
	for _, c := range s.sortedConns() {
		out = append(out, c)
	}
	for _, sc := range sortedValues(s.Scenes) {
		out = append(out, sc)
	}
	for _, t := range sortedValues(s.Tasks) {
		out = append(out, t)
	}
	return out
}

// sortedFlows returns the flows sorted by name, disabled ones included.
func (s *Set) sortedFlows() []*Flow { return sortedValues(s.Flows) }

// sortedFuncs returns the functions sorted by name.
func (s *Set) sortedFuncs() []*Func { return sortedValues(s.Funcs) }

// sortedConns returns the connectors sorted by name.
func (s *Set) sortedConns() []*Conn { return sortedValues(s.Conns) }

func sortedValues[T any](m map[string]*T) []*T {
	out := make([]*T, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if v := m[k]; v != nil {
			out = append(out, v)
		}
	}
	return out
}

// Params returns the parameters function fname runs with in flow flowName:
// the function's default_params overridden by the params of the flow's
// first entry for fname. The result is a new, non-nil map; an unknown flow
// or function contributes nothing.
func (s *Set) params(flowName, fname string) map[string]string {
	out := make(map[string]string)
	if fn := s.Funcs[fname]; fn != nil {
		maps.Copy(out, fn.Option.DefaultParams)
	}
	if fl := s.Flows[flowName]; fl != nil {
		for _, ff := range fl.Funcs {
			if ff.Name == fname {
				maps.Copy(out, ff.Params)
				break
			}
		}
	}
	return out
}
