package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// Marshal encodes one item as a YAML document in the layout KisFlow's
// exporter uses: kistype first, then every field in schema order, empty
// maps as {} and empty lists as [], four-space indentation. Strings holding
// line breaks, tabs or other control characters, or surrounding spaces, are
// double-quoted; invalid UTF-8 is written as !!binary. Parse reads the
// result back to an equal item, except that empty maps and lists read back
// as nil.
func Marshal(it Item) ([]byte, error) {
	var doc *yaml.Node
	switch it := it.(type) {
	case *Flow:
		if it != nil {
			entries := make([]*yaml.Node, len(it.Funcs))
			for i, ff := range it.Funcs {
				entries[i] = mappingNode(
					field{"fname", strNode(ff.Name)},
					field{"params", strMapNode(ff.Params)})
			}
			doc = mappingNode(
				field{"kistype", strNode(string(KindFlow))},
				field{"status", intNode(it.Status)},
				field{"flow_name", strNode(it.Name)},
				field{"flows", seqNode(entries)})
		}
	case *Func:
		if it != nil {
			doc = mappingNode(
				field{"kistype", strNode(string(KindFunc))},
				field{"fname", strNode(it.Name)},
				field{"fmode", strNode(string(it.Mode))},
				field{"source", mappingNode(
					field{"name", strNode(it.Source.Name)},
					field{"must", strListNode(it.Source.Must)})},
				field{"option", mappingNode(optionFields(it.Option)...)})
		}
	case *Conn:
		if it != nil {
			doc = mappingNode(
				field{"kistype", strNode(string(KindConn))},
				field{"cname", strNode(it.Name)},
				field{"addrs", strNode(it.Addrs)},
				field{"type", strNode(it.Type)},
				field{"key", strNode(it.Key)},
				field{"params", strMapNode(it.Params)},
				field{"load", strListNode(it.Load)},
				field{"save", strListNode(it.Save)})
		}
	case *Global:
		if it != nil {
			doc = mappingNode(
				field{"kistype", strNode(string(KindGlobal))},
				field{"prometheus_enable", boolNode(it.PrometheusEnable)},
				field{"prometheus_listen", boolNode(it.PrometheusListen)},
				field{"prometheus_serve", strNode(it.PrometheusServe)})
		}
	}
	if doc == nil {
		doc = marshalScheduling(it)
	}
	if doc == nil {
		return nil, &Error{Err: ErrInvalidValue, Detail: "nil item"}
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		k := keyOf(it)
		return nil, &Error{Kind: k.kind, Name: k.name, Err: ErrMalformed, Detail: err.Error()}
	}
	return data, nil
}

// optionFields returns a function's option fields: KisFlow's, then the
// key and window when set.
func optionFields(o FuncOption) []field {
	fs := []field{
		{"cname", strNode(o.Conn)},
		{"retry_times", intNode(o.RetryTimes)},
		{"return_duration", intNode(o.ReturnDuration)},
		{"default_params", strMapNode(o.DefaultParams)},
	}
	if o.Key != "" {
		fs = append(fs, field{"key", strNode(o.Key)})
	}
	if w := o.Window; w != nil {
		wf := []field{{"type", strNode(w.Type)}}
		for _, d := range []struct {
			name string
			v    time.Duration
		}{{"size", w.Size}, {"slide", w.Slide}, {"gap", w.Gap}, {"out_of_order", w.OutOfOrder}, {"lateness", w.Lateness}} {
			if d.v != 0 {
				wf = append(wf, field{d.name, strNode(d.v.String())})
			}
		}
		if w.TimeField != "" {
			wf = append(wf, field{"time_field", strNode(w.TimeField)})
		}
		fs = append(fs, field{"window", mappingNode(wf...)})
	}
	return fs
}

// field is one key and value of a mapping node.
type field struct {
	key   string
	value *yaml.Node
}

// mappingNode builds a mapping node holding fields in order.
func mappingNode(fields ...field) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, f := range fields {
		n.Content = append(n.Content, strNode(f.key), f.value)
	}
	if len(n.Content) == 0 {
		n.Style = yaml.FlowStyle
	}
	return n
}

func seqNode(items []*yaml.Node) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: items}
	if len(items) == 0 {
		n.Style = yaml.FlowStyle
	}
	return n
}

func strNode(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	switch {
	case !utf8.ValidString(s):
		n.Tag, n.Value = "!!binary", base64.StdEncoding.EncodeToString([]byte(s))
	case awkward(s):
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

func intNode(i int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(i)}
}

func boolNode(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
}

func strListNode(list []string) *yaml.Node {
	items := make([]*yaml.Node, len(list))
	for i, s := range list {
		items[i] = strNode(s)
	}
	return seqNode(items)
}

// strMapNode builds a mapping with its keys in sorted order.
func strMapNode(m map[string]string) *yaml.Node {
	fields := make([]field, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fields = append(fields, field{k, strNode(m[k])})
	}
	return mappingNode(fields...)
}

// awkward reports whether s holds a line break, a tab or another control
// character, or begins or ends with white space: strings the YAML encoder
// may write in a form that does not read back as written.
func awkward(s string) bool {
	if s != strings.TrimSpace(s) {
		return true
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}

// fileName returns the name Export gives the item's file: flow-<name>.yaml,
// func-<name>.yaml, conn-<name>.yaml, or kis-flow.yaml for the global
// settings; "" for a nil item.
func fileName(it Item) string {
	k := keyOf(it)
	switch k.kind {
	case "":
		return ""
	case KindGlobal:
		return "kis-flow.yaml"
	}
	return string(k.kind) + "-" + k.name + ".yaml"
}

// Export validates the Set and writes each item to its own file in dir
// (see fileName), creating dir if needed. Files already in dir are
// overwritten or left alone, never removed. Loading dir afterwards yields a
// Set with the same items.
//
// Export fails without writing anything if the Set is invalid or if an
// item's name cannot be used in a file name (it holds a path separator or
// NUL, or differs only in letter case from another item's name of the same
// kind).
func (s *Set) Export(dir string) error {
	if err := s.Validate(); err != nil {
		return err
	}
	var (
		items = s.items()
		names = make([]string, len(items))
		seen  = make(map[string]Item)
		errs  []error
	)
	for i, it := range items {
		k := keyOf(it)
		name := fileName(it)
		names[i] = name
		fail := func(sentinel error, detail string) {
			errs = append(errs, &Error{File: s.File(k.kind, k.name), Kind: k.kind, Name: k.name,
				Field: nameField(k.kind), Err: sentinel, Detail: detail})
		}
		if strings.ContainsAny(k.name, "/\\\x00") || !filepath.IsLocal(name) {
			fail(ErrInvalidValue, fmt.Sprintf("cannot be exported as file %q", name))
			continue
		}
		lower := strings.ToLower(name)
		if prev, ok := seen[lower]; ok {
			fail(ErrDuplicate, fmt.Sprintf("file %q would also hold %s %q", name, prev.Kind(), keyOf(prev).name))
			continue
		}
		seen[lower] = it
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	for i, it := range items {
		data, err := Marshal(it)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, names[i]), data, 0o644); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	return nil
}
