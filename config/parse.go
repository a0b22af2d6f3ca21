package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// Parse decodes one configuration document and checks its fields (but not
// its references to other items; see Set.Validate). name is used in error
// messages only, usually the file name.
//
// Fields that the schema does not know are ignored. On error Parse returns a
// nil Item and every problem it found, joined with errors.Join; each is an
// *Error.
func Parse(name string, data []byte) (Item, error) {
	it, _, errs := parse(name, data)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return it, nil
}

// parse is Parse that also returns, when an item is rejected, the kind and
// name of the item as far as they could be read.
func parse(file string, data []byte) (Item, itemKey, []error) {
	d := &decoder{file: file, failed: make(map[string]bool)}
	root, err := document(data)
	if err != nil {
		d.fail("", ErrMalformed, err.Error())
		return nil, itemKey{}, d.errs
	}
	fields, ok := d.mapping("", root)
	if !ok {
		return nil, itemKey{}, d.errs
	}
	kind, ok := d.str("kistype", fields["kistype"])
	if !ok {
		return nil, itemKey{}, d.errs
	}
	d.kind = Kind(kind)
	var it Item
	switch d.kind {
	case KindFlow:
		it = d.flow(fields)
	case KindFunc:
		it = d.function(fields)
	case KindConn:
		it = d.conn(fields)
	case KindGlobal:
		it = d.global(fields)
	case KindTask:
		it = d.task(fields)
	case KindScene:
		it = d.scene(fields)
	case "":
		d.fail("kistype", ErrMissingField, "")
		return nil, itemKey{}, d.errs
	default:
		d.kind = ""
		d.fail("kistype", ErrUnknownKind, strconv.Quote(kind)+" (want flow, func, conn, global, task or scene)")
		return nil, itemKey{}, d.errs
	}
	for _, e := range checkItem(file, it) {
		var ce *Error
		if errors.As(e, &ce) && d.failed[ce.Field] {
			continue // already reported as malformed
		}
		d.errs = append(d.errs, e)
	}
	if len(d.errs) > 0 {
		return nil, keyOf(it), d.errs
	}
	return it, keyOf(it), nil
}

// document parses data as exactly one YAML document and returns its root
// node.
func document(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty document")
		}
		return nil, err
	}
	for { // allow trailing empty documents, such as a final "---"
		var extra yaml.Node
		err := dec.Decode(&extra)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(extra.Content) > 0 && !isNull(extra.Content[0]) {
			return nil, errors.New("more than one document; want one per file")
		}
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, errors.New("empty document")
	}
	return doc.Content[0], nil
}

// decoder decodes the fields of one document, collecting errors.
type decoder struct {
	file   string
	kind   Kind
	name   string
	errs   []error
	failed map[string]bool // fields already reported
}

func (d *decoder) fail(field string, sentinel error, detail string) {
	d.failed[field] = true
	d.errs = append(d.errs, &Error{File: d.file, Kind: d.kind, Name: d.name, Field: field, Err: sentinel, Detail: detail})
}

func (d *decoder) flow(m map[string]*yaml.Node) *Flow {
	f := new(Flow)
	f.Name, _ = d.str("flow_name", m["flow_name"])
	d.name = f.Name
	f.Status, _ = d.integer("status", m["status"])
	entries, _ := d.seq("flows", m["flows"])
	for i, n := range entries {
		path := "flows[" + strconv.Itoa(i) + "]"
		var ff FlowFunc
		em, ok := d.mapping(path, n)
		if !ok {
			d.failed[path+".fname"] = true
		}
		ff.Name, _ = d.str(path+".fname", em["fname"])
		ff.Params, _ = d.strMap(path+".params", em["params"])
		f.Funcs = append(f.Funcs, ff)
	}
	return f
}

func (d *decoder) function(m map[string]*yaml.Node) *Func {
	f := new(Func)
	f.Name, _ = d.str("fname", m["fname"])
	d.name = f.Name
	if mode, _ := d.str("fmode", m["fmode"]); mode != "" {
		if canon, err := parseMode(mode); err == nil {
			f.Mode = canon
		} else {
			f.Mode = Mode(mode) // reported by checkItem
		}
	}
	if src, ok := d.mapping("source", m["source"]); ok {
		f.Source.Name, _ = d.str("source.name", src["name"])
		f.Source.Must, _ = d.strList("source.must", src["must"])
	}
	if opt, ok := d.mapping("option", m["option"]); ok {
		f.Option.Conn, _ = d.str("option.cname", opt["cname"])
		f.Option.RetryTimes, _ = d.integer("option.retry_times", opt["retry_times"])
		f.Option.ReturnDuration, _ = d.integer("option.return_duration", opt["return_duration"])
		f.Option.DefaultParams, _ = d.strMap("option.default_params", opt["default_params"])
		f.Option.Key, _ = d.str("option.key", opt["key"])
		if w, ok := d.mapping("option.window", opt["window"]); ok && w != nil {
			win := new(Window)
			win.Type, _ = d.str("option.window.type", w["type"])
			win.Size = d.duration("option.window.size", w["size"])
			win.Slide = d.duration("option.window.slide", w["slide"])
			win.Gap = d.duration("option.window.gap", w["gap"])
			win.TimeField, _ = d.str("option.window.time_field", w["time_field"])
			win.OutOfOrder = d.duration("option.window.out_of_order", w["out_of_order"])
			win.Lateness = d.duration("option.window.lateness", w["lateness"])
			f.Option.Window = win
		}
	}
	return f
}

// duration reads a duration such as 10s or 1m30s; "" is zero.
func (d *decoder) duration(field string, n *yaml.Node) time.Duration {
	s, ok := d.str(field, n)
	if !ok || s == "" {
		return 0
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.fail(field, ErrInvalidValue, strconv.Quote(s)+" (want a duration such as 10s)")
		return 0
	}
	return v
}

func (d *decoder) conn(m map[string]*yaml.Node) *Conn {
	c := new(Conn)
	c.Name, _ = d.str("cname", m["cname"])
	d.name = c.Name
	c.Addrs, _ = d.str("addrs", m["addrs"])
	c.Type, _ = d.str("type", m["type"])
	c.Key, _ = d.str("key", m["key"])
	c.Params, _ = d.strMap("params", m["params"])
	load, _ := d.strList("load", m["load"])
	c.Load = dedupe(load)
	save, _ := d.strList("save", m["save"])
	c.Save = dedupe(save)
	return c
}

func (d *decoder) global(m map[string]*yaml.Node) *Global {
	g := new(Global)
	g.PrometheusEnable, _ = d.boolean("prometheus_enable", m["prometheus_enable"])
	g.PrometheusListen, _ = d.boolean("prometheus_listen", m["prometheus_listen"])
	g.PrometheusServe, _ = d.str("prometheus_serve", m["prometheus_serve"])
	return g
}

// mapping returns the entries of a mapping node. An absent or null node
// yields a nil map; merge keys (<<) and aliases are resolved.
func (d *decoder) mapping(field string, n *yaml.Node) (map[string]*yaml.Node, bool) {
	n = resolve(n)
	if n == nil || isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		d.fail(field, ErrMalformed, "want a mapping, got "+describe(n))
		return nil, false
	}
	var m map[string]yaml.Node
	if err := n.Decode(&m); err != nil {
		d.fail(field, ErrMalformed, yamlDetail(err))
		return nil, false
	}
	out := make(map[string]*yaml.Node, len(m))
	for k, v := range m {
		out[k] = &v
	}
	return out, true
}

// seq returns the items of a sequence node; nil for an absent or null node.
func (d *decoder) seq(field string, n *yaml.Node) ([]*yaml.Node, bool) {
	n = resolve(n)
	if n == nil || isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(field, ErrMalformed, "want a list, got "+describe(n))
		return nil, false
	}
	return n.Content, true
}

func (d *decoder) str(field string, n *yaml.Node) (string, bool) {
	n = resolve(n)
	if n == nil || isNull(n) {
		return "", true
	}
	if n.Kind != yaml.ScalarNode {
		d.fail(field, ErrMalformed, "want a string, got "+describe(n))
		return "", false
	}
	var s string
	if err := n.Decode(&s); err != nil {
		d.fail(field, ErrMalformed, yamlDetail(err))
		return "", false
	}
	return s, true
}

func (d *decoder) integer(field string, n *yaml.Node) (int, bool) {
	n = resolve(n)
	if n == nil || isNull(n) {
		return 0, true
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		d.fail(field, ErrMalformed, "want an integer, got "+describe(n))
		return 0, false
	}
	var i int
	if err := n.Decode(&i); err != nil {
		d.fail(field, ErrMalformed, yamlDetail(err))
		return 0, false
	}
	return i, true
}

func (d *decoder) boolean(field string, n *yaml.Node) (bool, bool) {
	n = resolve(n)
	if n == nil || isNull(n) {
		return false, true
	}
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		d.fail(field, ErrMalformed, "want true or false, got "+describe(n))
		return false, false
	}
	return b, true
}

// strList decodes a list of strings; nil when absent, null or empty.
func (d *decoder) strList(field string, n *yaml.Node) ([]string, bool) {
	items, ok := d.seq(field, n)
	if !ok {
		return nil, false
	}
	var out []string
	for i, item := range items {
		s, ok := d.str(field+"["+strconv.Itoa(i)+"]", item)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// strMap decodes a mapping of strings to strings; nil when absent, null or
// empty.
func (d *decoder) strMap(field string, n *yaml.Node) (map[string]string, bool) {
	m, ok := d.mapping(field, n)
	if !ok || len(m) == 0 {
		return nil, ok
	}
	out := make(map[string]string, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v, ok := d.str(field+"."+k, m[k])
		if !ok {
			return nil, false
		}
		out[k] = v
	}
	return out, true
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 8; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node's type for an error message.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return fmt.Sprintf("%s %q", n.ShortTag(), v)
	}
	return "an unexpected node"
}

// yamlDetail flattens a YAML decoding error to one line.
func yamlDetail(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		return strings.Join(te.Errors, "; ")
	}
	return err.Error()
}

// dedupe removes repeated strings, keeping the first of each; nil when
// empty.
func dedupe(list []string) []string {
	var out []string
	seen := make(map[string]bool, len(list))
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
