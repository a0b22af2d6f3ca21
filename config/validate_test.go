package config_test

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/kisflow/kisflow/config"
)

func TestParseErrors(t *testing.T) {
	const file = "conf/item.yml"
	tests := []struct {
		name  string
		doc   string
		err   error
		field string // the field the message must name; "" for the whole document
		item  string // the item the message must name, if any
	}{
		{"not yaml", "kistype: flow\nflow_name: [a\n", config.ErrMalformed, "", ""},
		{"tab indentation", "kistype: flow\n\tflow_name: a\n", config.ErrMalformed, "", ""},
		{"empty file", "", config.ErrMalformed, "", ""},
		{"only comments", "# nothing\n", config.ErrMalformed, "", ""},
		{"null document", "~\n", config.ErrMalformed, "", ""},
		{"list document", "- kistype: flow\n", config.ErrMalformed, "", ""},
		{"scalar document", "flow\n", config.ErrMalformed, "", ""},
		{"two documents", "kistype: global\n---\nkistype: global\n", config.ErrMalformed, "", ""},
		{"repeated key", "kistype: flow\nflow_name: a\nflow_name: b\n", config.ErrMalformed, "", ""},
		{"missing kistype", "flow_name: a\n", config.ErrMissingField, "kistype", ""},
		{"empty kistype", "kistype: ''\nflow_name: a\n", config.ErrMissingField, "kistype", ""},
		{"unknown kistype", "kistype: job\nname: a\n", config.ErrUnknownKind, "kistype", ""},
		{"kistype wrong case", "kistype: Flow\nflow_name: a\n", config.ErrUnknownKind, "kistype", ""},
		{"kistype list", "kistype: [flow]\n", config.ErrMalformed, "kistype", ""},

		{"flow without name", "kistype: flow\nstatus: 1\nflows: [{fname: f}]\n", config.ErrMissingField, "flow_name", ""},
		{"flow name mapping", "kistype: flow\nflow_name: {a: b}\n", config.ErrMalformed, "flow_name", ""},
		{"flow status text", "kistype: flow\nflow_name: a\nstatus: abc\n", config.ErrMalformed, "status", `flow "a"`},
		{"flow status quoted", "kistype: flow\nflow_name: a\nstatus: '1'\n", config.ErrMalformed, "status", `flow "a"`},
		{"flow status float", "kistype: flow\nflow_name: a\nstatus: 1.5\n", config.ErrMalformed, "status", `flow "a"`},
		{"flow status overflow", "kistype: flow\nflow_name: a\nstatus: 99999999999999999999\n", config.ErrMalformed, "status", `flow "a"`},
		{"flow status 2", "kistype: flow\nflow_name: a\nstatus: 2\n", config.ErrInvalidValue, "status", `flow "a"`},
		{"flow status -1", "kistype: flow\nflow_name: a\nstatus: -1\n", config.ErrInvalidValue, "status", `flow "a"`},
		{"flows not a list", "kistype: flow\nflow_name: a\nflows: f\n", config.ErrMalformed, "flows", `flow "a"`},
		{"flow entry not a mapping", "kistype: flow\nflow_name: a\nflows: [f]\n", config.ErrMalformed, "flows[0]", `flow "a"`},
		{"flow entry without fname", "kistype: flow\nflow_name: a\nflows:\n  - fname: f\n  - fname: g\n  - params: {k: v}\n",
			config.ErrMissingField, "flows[2].fname", `flow "a"`},
		{"flow entry null", "kistype: flow\nflow_name: a\nflows: [~]\n", config.ErrMissingField, "flows[0].fname", `flow "a"`},
		{"flow params list", "kistype: flow\nflow_name: a\nflows: [{fname: f, params: [k]}]\n", config.ErrMalformed, "flows[0].params", `flow "a"`},
		{"flow params nested", "kistype: flow\nflow_name: a\nflows: [{fname: f, params: {k: {x: y}}}]\n", config.ErrMalformed, "flows[0].params.k", `flow "a"`},

		{"func without fname", "kistype: func\nfmode: Verify\n", config.ErrMissingField, "fname", ""},
		{"func without fmode", "kistype: func\nfname: f\n", config.ErrMissingField, "fmode", `func "f"`},
		{"func unknown fmode", "kistype: func\nfname: f\nfmode: Compute\n", config.ErrUnknownMode, "fmode", `func "f"`},
		{"func fmode number", "kistype: func\nfname: f\nfmode: 3\n", config.ErrUnknownMode, "fmode", `func "f"`},
		{"func fmode list", "kistype: func\nfname: f\nfmode: [Save]\n", config.ErrMalformed, "fmode", `func "f"`},
		{"func source scalar", "kistype: func\nfname: f\nfmode: Save\nsource: s\n", config.ErrMalformed, "source", `func "f"`},
		{"func must scalar", "kistype: func\nfname: f\nfmode: Save\nsource: {must: id}\n", config.ErrMalformed, "source.must", `func "f"`},
		{"func must nested", "kistype: func\nfname: f\nfmode: Save\nsource: {must: [a, [b]]}\n", config.ErrMalformed, "source.must[1]", `func "f"`},
		{"func option list", "kistype: func\nfname: f\nfmode: Save\noption: []\n", config.ErrMalformed, "option", `func "f"`},
		{"func retry text", "kistype: func\nfname: f\nfmode: Save\noption: {retry_times: three}\n", config.ErrMalformed, "option.retry_times", `func "f"`},
		{"func retry negative", "kistype: func\nfname: f\nfmode: Save\noption: {retry_times: -1}\n", config.ErrInvalidValue, "option.retry_times", `func "f"`},
		{"func duration negative", "kistype: func\nfname: f\nfmode: Save\noption: {return_duration: -5}\n", config.ErrInvalidValue, "option.return_duration", `func "f"`},
		{"func cname list", "kistype: func\nfname: f\nfmode: Save\noption: {cname: [c]}\n", config.ErrMalformed, "option.cname", `func "f"`},
		{"func defaults list", "kistype: func\nfname: f\nfmode: Save\noption: {default_params: [a]}\n", config.ErrMalformed, "option.default_params", `func "f"`},

		{"conn without cname", "kistype: conn\naddrs: x\n", config.ErrMissingField, "cname", ""},
		{"conn addrs list", "kistype: conn\ncname: c\naddrs: [a, b]\n", config.ErrMalformed, "addrs", `conn "c"`},
		{"conn params scalar", "kistype: conn\ncname: c\nparams: p\n", config.ErrMalformed, "params", `conn "c"`},
		{"conn save mapping", "kistype: conn\ncname: c\nsave: {a: b}\n", config.ErrMalformed, "save", `conn "c"`},
		{"conn load nested", "kistype: conn\ncname: c\nload: [a, {b: c}]\n", config.ErrMalformed, "load[1]", `conn "c"`},

		{"global enable text", "kistype: global\nprometheus_enable: maybe\n", config.ErrMalformed, "prometheus_enable", "global"},
		{"global listen number", "kistype: global\nprometheus_listen: 2\n", config.ErrMalformed, "prometheus_listen", "global"},
		{"global serve mapping", "kistype: global\nprometheus_serve: {a: b}\n", config.ErrMalformed, "prometheus_serve", "global"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it, err := config.Parse(file, []byte(tt.doc))
			if it != nil || err == nil {
				t.Fatalf("Parse = %+v, %v; want an error", it, err)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("error %q does not wrap %q", err, tt.err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "config: "+file+": ") {
				t.Errorf("error %q does not start with the file name", msg)
			}
			if tt.field != "" && !strings.Contains(msg, " "+tt.field+": ") {
				t.Errorf("error %q does not name field %s", msg, tt.field)
			}
			if tt.item != "" && !strings.Contains(msg, tt.item) {
				t.Errorf("error %q does not name %s", msg, tt.item)
			}
			var ce *config.Error
			if !errors.As(err, &ce) || ce.File != file || ce.Field != tt.field {
				t.Errorf("errors.As gives %+v, want File %q and Field %q", ce, file, tt.field)
			}
			checkLeaves(t, err)
		})
	}
}

func TestParseCollectsAllErrors(t *testing.T) {
	const doc = "kistype: func\nfname: f\nfmode: Compute\nsource: {must: x}\noption: {retry_times: -1, return_duration: -1, default_params: [a]}\n"
	_, err := config.Parse("func-f.yml", []byte(doc))
	fields := map[string]error{
		"fmode":                  config.ErrUnknownMode,
		"source.must":            config.ErrMalformed,
		"option.retry_times":     config.ErrInvalidValue,
		"option.return_duration": config.ErrInvalidValue,
		"option.default_params":  config.ErrMalformed,
	}
	got := leaves(err)
	if len(got) != len(fields) {
		t.Fatalf("got %d errors, want %d:\n%v", len(got), len(fields), err)
	}
	for _, e := range got {
		var ce *config.Error
		if !errors.As(e, &ce) || !errors.Is(e, fields[ce.Field]) || ce.Name != "f" || ce.Kind != config.KindFunc {
			t.Errorf("unexpected error %q", e)
		}
	}
	checkLeaves(t, err)
}

func TestLoadFSErrors(t *testing.T) {
	const (
		funcF = "kistype: func\nfname: f\nfmode: Calculate\n"
		connC = "kistype: conn\ncname: c\n"
	)
	tests := []struct {
		name    string
		files   map[string]string
		err     error
		file    string   // the file the message must start with
		mention []string // further text the message must hold
	}{
		{"duplicate flow", map[string]string{
			"a/flow-x.yml": "kistype: flow\nstatus: 1\nflow_name: x\nflows: [{fname: f}]\n",
			"b/flow-x.yml": "kistype: flow\nstatus: 0\nflow_name: x\n",
			"func-f.yml":   funcF,
		}, config.ErrDuplicate, "b/flow-x.yml", []string{`flow "x"`, "flow_name", "a/flow-x.yml"}},
		{"duplicate func", map[string]string{
			"func-f.yml":  funcF,
			"func-f2.yml": "kistype: func\nfname: f\nfmode: Save\n",
		}, config.ErrDuplicate, "func-f2.yml", []string{`func "f"`, "fname", "func-f.yml"}},
		{"duplicate conn", map[string]string{
			"conn-c.yml":  connC,
			"conn-c.yaml": connC,
		}, config.ErrDuplicate, "conn-c.yml", []string{`conn "c"`, "cname", "conn-c.yaml"}},
		{"two globals", map[string]string{
			"kis-flow.yml":   "kistype: global\n",
			"x/kis-flow.yml": "kistype: global\nprometheus_enable: true\n",
		}, config.ErrDuplicate, "x/kis-flow.yml", []string{"global", "kis-flow.yml"}},
		{"unknown function", map[string]string{
			"flow-a.yml": "kistype: flow\nstatus: 1\nflow_name: a\nflows: [{fname: f}, {fname: f}, {fname: g}]\n",
			"func-f.yml": funcF,
		}, config.ErrUnknownReference, "flow-a.yml", []string{`flow "a"`, "flows[2].fname", `"g"`}},
		{"unknown connector", map[string]string{
			"func-f.yml": "kistype: func\nfname: f\nfmode: Save\noption: {cname: c2}\n",
			"conn-c.yml": connC,
		}, config.ErrUnknownReference, "func-f.yml", []string{`func "f"`, "option.cname", `"c2"`}},
		{"malformed file", map[string]string{
			"func-f.yml": funcF,
			"bad.yaml":   "kistype: func\nfname: [\n",
		}, config.ErrMalformed, "bad.yaml", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, data := range tt.files {
				fsys[name] = &fstest.MapFile{Data: []byte(data)}
			}
			s, err := config.LoadFS(fsys, ".")
			if s != nil || err == nil {
				t.Fatalf("LoadFS = %v, %v; want nil and an error", s, err)
			}
			if n := len(leaves(err)); n != 1 {
				t.Errorf("got %d errors, want 1: %v", n, err)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("error %q does not wrap %q", err, tt.err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "config: "+tt.file+": ") {
				t.Errorf("error %q does not start with file %s", msg, tt.file)
			}
			for _, m := range tt.mention {
				if !strings.Contains(msg, m) {
					t.Errorf("error %q does not mention %s", msg, m)
				}
			}
			checkLeaves(t, err)
		})
	}
}

func TestLoadFSCollectsAllErrors(t *testing.T) {
	fsys := fstest.MapFS{
		"flow-a.yml":    {Data: []byte("kistype: flow\nstatus: 1\nflow_name: a\nflows: [{fname: f}, {fname: g}, {fname: h}]\n")},
		"flow-b.yml":    {Data: []byte("kistype: flow\nstatus: abc\nflow_name: b\n")},
		"func-f.yml":    {Data: []byte("kistype: func\nfname: f\nfmode: Calculate\noption: {cname: nowhere}\n")},
		"func-g.yml":    {Data: []byte("kistype: func\nfname: g\nfmode: Guess\n")}, // broken: no second error for flow a's reference
		"func-f2.yml":   {Data: []byte("kistype: func\nfname: f\nfmode: Load\n")},
		"notes.yml":     {Data: []byte("kistype: note\n")},
		"conn-c.yml":    {Data: []byte("kistype: conn\nload: [x]\n")},
		"kis-flow.yaml": {Data: []byte("kistype: global\nprometheus_enable: sometimes\n")},
		"broken.yml":    {Data: []byte(":\n  - [")},
	}
	s, err := config.LoadFS(fsys, ".")
	if s != nil {
		t.Fatalf("LoadFS returned a Set with an error")
	}
	want := []struct {
		file  string
		err   error
		field string
	}{
		{"broken.yml", config.ErrMalformed, ""},
		{"conn-c.yml", config.ErrMissingField, "cname"},
		{"flow-b.yml", config.ErrMalformed, "status"},
		{"func-f2.yml", config.ErrDuplicate, "fname"},
		{"func-g.yml", config.ErrUnknownMode, "fmode"},
		{"kis-flow.yaml", config.ErrMalformed, "prometheus_enable"},
		{"notes.yml", config.ErrUnknownKind, "kistype"},
		{"flow-a.yml", config.ErrUnknownReference, "flows[2].fname"},
		{"func-f.yml", config.ErrUnknownReference, "option.cname"},
	}
	got := leaves(err)
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(got), len(want), err)
	}
	for i, w := range want {
		var ce *config.Error
		if !errors.As(got[i], &ce) || ce.File != w.file || ce.Field != w.field || !errors.Is(ce, w.err) {
			t.Errorf("error %d = %q, want %s, field %q, %v", i, got[i], w.file, w.field, w.err)
		}
	}
	checkLeaves(t, err)
}

func validSet(t *testing.T) *config.Set {
	t.Helper()
	s := new(config.Set)
	for file, it := range map[string]config.Item{
		"flow-a.yml": &config.Flow{Status: 1, Name: "a", Funcs: []config.FlowFunc{{Name: "f"}, {Name: "g"}}},
		"func-f.yml": &config.Func{Name: "f", Mode: config.ModeLoad, Option: config.FuncOption{Conn: "c"}},
		"func-g.yml": &config.Func{Name: "g", Mode: config.ModeSave},
		"conn-c.yml": &config.Conn{Name: "c", Type: "memory"},
		"global.yml": &config.Global{},
	} {
		if err := s.Add(file, it); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(s *config.Set)
		err    error
		want   string
	}{
		{"unknown function", func(s *config.Set) { s.Flows["a"].Funcs[1].Name = "h" },
			config.ErrUnknownReference, `config: flow-a.yml: flow "a": flows[1].fname: unknown reference: function "h" is not defined`},
		{"unknown connector", func(s *config.Set) { delete(s.Conns, "c") },
			config.ErrUnknownReference, `config: func-f.yml: func "f": option.cname: unknown reference: connector "c" is not defined`},
		{"lower-case mode", func(s *config.Set) { s.Funcs["g"].Mode = "save" },
			config.ErrUnknownMode, `config: func-g.yml: func "g": fmode: unknown fmode: "save" (want Verify, Calculate, Expand, Save or Load)`},
		{"no mode", func(s *config.Set) { s.Funcs["g"].Mode = "" },
			config.ErrMissingField, `config: func-g.yml: func "g": fmode: missing required field`},
		{"bad status", func(s *config.Set) { s.Flows["a"].Status = 3 },
			config.ErrInvalidValue, `config: flow-a.yml: flow "a": status: invalid value: 3 (want 1 to enable or 0 to disable)`},
		{"negative retries", func(s *config.Set) { s.Funcs["f"].Option.RetryTimes = -2 },
			config.ErrInvalidValue, `config: func-f.yml: func "f": option.retry_times: invalid value: -2 (want 0 or more)`},
		{"empty entry", func(s *config.Set) { s.Flows["a"].Funcs[0].Name = "" },
			config.ErrMissingField, `config: flow-a.yml: flow "a": flows[0].fname: missing required field`},
		{"nil conn", func(s *config.Set) { s.Conns["c"] = nil },
			config.ErrInvalidValue, `config: conn-c.yml: conn "c": invalid value: nil item`},
		{"repeated save", func(s *config.Set) { s.Conns["c"].Save = []string{"f", "g", "f"} },
			config.ErrDuplicate, `config: conn-c.yml: conn "c": save[2]: duplicate name: "f" repeats save[0]`},
		{"renamed func", func(s *config.Set) { s.Funcs["g"].Name = "g2" },
			config.ErrInvalidValue, `config: func-g.yml: func "g": fname: invalid value: differs from the item's key in the set`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSet(t)
			tt.change(s)
			err := s.Validate()
			if !errors.Is(err, tt.err) {
				t.Fatalf("Validate() = %v, want %v", err, tt.err)
			}
			if err.Error() != tt.want {
				t.Errorf("Validate() =\n%s\nwant\n%s", err, tt.want)
			}
			checkLeaves(t, err)
			if err := s.Export(t.TempDir()); !errors.Is(err, tt.err) {
				t.Errorf("Export() = %v, want %v", err, tt.err)
			}
		})
	}
}

func TestValidateSkipsDisabledFlows(t *testing.T) {
	s := validSet(t)
	s.Flows["a"].Status = config.StatusDisabled
	s.Flows["a"].Funcs[0].Name = "gone"
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestAdd(t *testing.T) {
	s := validSet(t)
	err := s.Add("other/func-f.yml", &config.Func{Name: "f", Mode: config.ModeVerify})
	if !errors.Is(err, config.ErrDuplicate) ||
		err.Error() != `config: other/func-f.yml: func "f": fname: duplicate name: also defined in func-f.yml` {
		t.Errorf("Add(duplicate) = %v", err)
	}
	if err := s.Add("g2.yml", &config.Global{}); !errors.Is(err, config.ErrDuplicate) {
		t.Errorf("Add(second global) = %v", err)
	}
	if err := s.Add("x.yml", &config.Func{Name: "x"}); !errors.Is(err, config.ErrMissingField) {
		t.Errorf("Add(func without mode) = %v", err)
	}
	for _, it := range []config.Item{nil, (*config.Flow)(nil), (*config.Func)(nil), (*config.Conn)(nil), (*config.Global)(nil)} {
		if err := s.Add("nil.yml", it); !errors.Is(err, config.ErrInvalidValue) {
			t.Errorf("Add(%#v) = %v, want ErrInvalidValue", it, err)
		}
	}
	if len(s.Funcs) != 2 || s.Funcs["f"].Mode != config.ModeLoad || s.File(config.KindFunc, "f") != "func-f.yml" {
		t.Errorf("failed Adds changed the set: %+v", s.Funcs)
	}
}

func TestMerge(t *testing.T) {
	s := validSet(t)
	var other config.Set
	if err := other.Add("more/flow-b.yml", &config.Flow{Name: "b", Funcs: []config.FlowFunc{{Name: "g"}}}); err != nil {
		t.Fatal(err)
	}
	if err := other.Add("more/conn-d.yml", &config.Conn{Name: "d"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Merge(&other); err != nil {
		t.Fatal(err)
	}
	if s.Flows["b"] == nil || s.Conns["d"] == nil || s.File(config.KindConn, "d") != "more/conn-d.yml" {
		t.Errorf("Merge did not add the items: %v %v", s.Flows, s.Conns)
	}
	if err := s.Validate(); err != nil {
		t.Error(err)
	}

	clash := new(config.Set)
	for file, it := range map[string]config.Item{
		"x/conn-e.yml":   &config.Conn{Name: "e"},
		"x/conn-c.yml":   &config.Conn{Name: "c"},
		"x/kis-flow.yml": &config.Global{},
	} {
		if err := clash.Add(file, it); err != nil {
			t.Fatal(err)
		}
	}
	err := s.Merge(clash)
	if n := len(leaves(err)); n != 2 || !errors.Is(err, config.ErrDuplicate) {
		t.Errorf("Merge = %v, want two ErrDuplicate errors", err)
	}
	if !strings.Contains(err.Error(), "x/conn-c.yml") || !strings.Contains(err.Error(), "conn-c.yml: conn") {
		t.Errorf("Merge error %q does not name both files", err)
	}
	if s.Conns["e"] != nil {
		t.Error("a failed Merge changed the set")
	}
}
