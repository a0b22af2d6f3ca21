package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// Validate checks every item of the Set as Parse does, and checks
// references: each entry of an enabled flow must name a function of the
// Set, and each function's option.cname, when set, must name a connector
// of the Set. Disabled flows are not checked for references, so a flow can
// be switched off while functions it names are removed.
//
// It returns nil or every problem found, joined with errors.Join, in a
// deterministic order.
func (s *Set) Validate() error {
	return errors.Join(s.validate(nil)...)
}

// validate checks the Set; references to items in broken (items whose
// files failed to load) are not reported again.
func (s *Set) validate(broken map[itemKey]bool) []error {
	var errs []error
	if s.Global != nil {
		errs = append(errs, checkItem(s.File(KindGlobal, ""), s.Global)...)
	}
	for _, name := range slices.Sorted(maps.Keys(s.Flows)) {
		f := s.Flows[name]
		file := s.File(KindFlow, name)
		if e := checkEntry(file, KindFlow, name, f == nil, f != nil && f.Name != name); e != nil {
			errs = append(errs, e)
			continue
		}
		errs = append(errs, checkItem(file, f)...)
		if !f.Enabled() {
			continue
		}
		for i, ff := range f.Funcs {
			if ff.Name == "" || broken[itemKey{KindFunc, ff.Name}] {
				continue
			}
			if _, ok := s.Funcs[ff.Name]; !ok {
				errs = append(errs, &Error{File: file, Kind: KindFlow, Name: name,
					Field: "flows[" + strconv.Itoa(i) + "].fname", Err: ErrUnknownReference,
					Detail: fmt.Sprintf("function %q is not defined", ff.Name)})
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.Funcs)) {
		f := s.Funcs[name]
		file := s.File(KindFunc, name)
		if e := checkEntry(file, KindFunc, name, f == nil, f != nil && f.Name != name); e != nil {
			errs = append(errs, e)
			continue
		}
		errs = append(errs, checkItem(file, f)...)
		c := f.Option.Conn
		if c == "" || broken[itemKey{KindConn, c}] {
			continue
		}
		if _, ok := s.Conns[c]; !ok {
			errs = append(errs, &Error{File: file, Kind: KindFunc, Name: name,
				Field: "option.cname", Err: ErrUnknownReference,
				Detail: fmt.Sprintf("connector %q is not defined", c)})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.Conns)) {
		c := s.Conns[name]
		file := s.File(KindConn, name)
		if e := checkEntry(file, KindConn, name, c == nil, c != nil && c.Name != name); e != nil {
			errs = append(errs, e)
			continue
		}
		errs = append(errs, checkItem(file, c)...)
	}
	return append(errs, s.validateScheduling(broken)...)
}

// checkEntry reports a map entry that is nil or whose key is not its
// item's name.
func checkEntry(file string, kind Kind, key string, isNil, mismatch bool) error {
	switch {
	case isNil:
		return &Error{File: file, Kind: kind, Name: key, Err: ErrInvalidValue, Detail: "nil item"}
	case mismatch:
		return &Error{File: file, Kind: kind, Name: key, Field: nameField(kind), Err: ErrInvalidValue,
			Detail: "differs from the item's key in the set"}
	}
	return nil
}

// checkItem checks one item on its own: required names, the mode, value
// ranges, and repeated names in a connector's load and save lists (which
// Parse removes).
func checkItem(file string, it Item) []error {
	var errs []error
	k := keyOf(it)
	add := func(field string, sentinel error, detail string) {
		errs = append(errs, &Error{File: file, Kind: k.kind, Name: k.name, Field: field, Err: sentinel, Detail: detail})
	}
	switch it := it.(type) {
	case *Flow:
		if it == nil {
			break
		}
		if it.Name == "" {
			add("flow_name", ErrMissingField, "")
		}
		if it.Status != StatusDisabled && it.Status != StatusEnabled {
			add("status", ErrInvalidValue, strconv.Itoa(it.Status)+" (want 1 to enable or 0 to disable)")
		}
		for i, ff := range it.Funcs {
			if ff.Name == "" {
				add("flows["+strconv.Itoa(i)+"].fname", ErrMissingField, "")
			}
		}
		return errs
	case *Func:
		if it == nil {
			break
		}
		if it.Name == "" {
			add("fname", ErrMissingField, "")
		}
		switch {
		case it.Mode == "":
			add("fmode", ErrMissingField, "")
		case !it.Mode.valid():
			add("fmode", ErrUnknownMode, strconv.Quote(string(it.Mode))+" (want Verify, Calculate, Expand, Save or Load)")
		}
		if it.Option.RetryTimes < 0 {
			add("option.retry_times", ErrInvalidValue, strconv.Itoa(it.Option.RetryTimes)+" (want 0 or more)")
		}
		if it.Option.ReturnDuration < 0 {
			add("option.return_duration", ErrInvalidValue, strconv.Itoa(it.Option.ReturnDuration)+" (want 0 or more milliseconds)")
		}
		if w := it.Option.Window; w != nil {
			if it.Option.Key == "" {
				add("option.key", ErrMissingField, "a window needs a key")
			}
			positive := func(field string, d time.Duration) {
				if d <= 0 {
					add(field, ErrInvalidValue, d.String()+" (want a positive duration)")
				}
			}
			switch w.Type {
			case "tumbling":
				positive("option.window.size", w.Size)
			case "sliding":
				positive("option.window.size", w.Size)
				positive("option.window.slide", w.Slide)
				if w.Slide > w.Size {
					add("option.window.slide", ErrInvalidValue, w.Slide.String()+" (want at most the size)")
				}
			case "session":
				positive("option.window.gap", w.Gap)
			default:
				add("option.window.type", ErrInvalidValue, strconv.Quote(w.Type)+" (want tumbling, sliding or session)")
			}
			if w.OutOfOrder < 0 || w.Lateness < 0 {
				add("option.window", ErrInvalidValue, "negative out_of_order or lateness")
			}
			if w.TimeField == "" && (w.OutOfOrder > 0 || w.Lateness > 0) {
				add("option.window.time_field", ErrMissingField, "out_of_order and lateness need event time")
			}
		}
		return errs
	case *Conn:
		if it == nil {
			break
		}
		if it.Name == "" {
			add("cname", ErrMissingField, "")
		}
		for _, l := range []struct {
			field string
			names []string
		}{{"load", it.Load}, {"save", it.Save}} {
			for i, name := range l.names {
				if j := slices.Index(l.names, name); j < i {
					add(l.field+"["+strconv.Itoa(i)+"]", ErrDuplicate, fmt.Sprintf("%q repeats %s[%d]", name, l.field, j))
				}
			}
		}
		return errs
	case *Global:
		if it == nil {
			break
		}
		return nil
	case *Task:
		if it == nil {
			break
		}
		checkScheduling(it, add)
		return errs
	case *Scene:
		if it == nil {
			break
		}
		checkScheduling(it, add)
		return errs
	}
	return []error{&Error{File: file, Err: ErrInvalidValue, Detail: "nil item"}}
}
