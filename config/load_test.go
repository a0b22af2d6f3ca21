package config_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/kisflow/kisflow/config"
)

// orderSource is the source shared by most of the reference functions.
var orderSource = config.Source{Name: "UserOrderErrorRate", Must: []string{"order_id", "user_id"}}

func wantLoadConf() *config.Set {
	flow := func(name string, funcs ...config.FlowFunc) *config.Flow {
		return &config.Flow{Status: config.StatusEnabled, Name: name, Funcs: funcs}
	}
	ff := func(name string, params map[string]string) config.FlowFunc {
		return config.FlowFunc{Name: name, Params: params}
	}
	calc := func(name string) *config.Func {
		return &config.Func{Name: name, Mode: config.ModeCalculate, Source: orderSource}
	}
	stuSource := config.Source{Name: "StudentAverageScore", Must: []string{"stu_id"}}
	return &config.Set{
		Flows: map[string]*config.Flow{
			"StuAvg": flow("StuAvg", ff("AvgStuScore", nil), ff("PrintStuAvgScore", nil)),
			"flowName1": flow("flowName1",
				ff("funcName1", map[string]string{"myKey1": "flowValue1-1", "myKey2": "flowValue1-2"}),
				ff("funcName2", map[string]string{"myKey1": "flowValue2-1", "myKey2": "flowValue2-2"}),
				ff("funcName3", map[string]string{"myKey1": "flowValue3-1", "myKey2": "flowValue3-2"})),
			"flowName2": flow("flowName2", ff("funcName1", nil), ff("abortFunc", nil), ff("funcName3", nil)),
			"flowName3": flow("flowName3", ff("funcName1", nil), ff("dataReuseFunc", nil), ff("funcName3", nil)),
			"flowName4": flow("flowName4", ff("funcName1", nil), ff("noResultFunc", nil), ff("funcName3", nil)),
			"flowName5": flow("flowName5", ff("funcName1", nil), ff("funcName2", nil), ff("jumpFunc", nil)),
			"flowFork1": flow("flowFork1",
				ff("funcName1", map[string]string{"myKey1": "flowValue1-1"}),
				ff("funcName3", map[string]string{"myKey1": "flowValue3-1"})),
		},
		Funcs: map[string]*config.Func{
			"AvgStuScore":      {Name: "AvgStuScore", Mode: config.ModeCalculate, Source: stuSource},
			"PrintStuAvgScore": {Name: "PrintStuAvgScore", Mode: config.ModeExpand, Source: stuSource},
			"abortFunc":        calc("abortFunc"),
			"dataReuseFunc":    calc("dataReuseFunc"),
			"jumpFunc":         calc("jumpFunc"),
			"noResultFunc":     calc("noResultFunc"),
			"funcName1": {
				Name: "funcName1", Mode: config.ModeVerify,
				Source: config.Source{Name: "TiktokOrder", Must: []string{"order_id", "user_id"}},
				Option: config.FuncOption{DefaultParams: map[string]string{
					"default1": "funcName1_param1", "default2": "funcName1_param2"}},
			},
			"funcName2": {
				Name: "funcName2", Mode: config.ModeSave, Source: orderSource,
				Option: config.FuncOption{Conn: "ConnName1", DefaultParams: map[string]string{
					"default1": "funcName2_param1", "default2": "funcName2_param2"}},
			},
			"funcName3": {
				Name: "funcName3", Mode: config.ModeCalculate, Source: orderSource,
				Option: config.FuncOption{DefaultParams: map[string]string{
					"default1": "funcName3_param1", "default2": "funcName3_param2"}},
			},
		},
		Conns: map[string]*config.Conn{
			"ConnName1": {
				Name: "ConnName1", Addrs: "0.0.0.0:9988,0.0.0.0:9999,0.0.0.0:9990", Type: "redis",
				Key: "redis-key", Params: map[string]string{"args1": "value1", "args2": "value2"},
				Save: []string{"funcName2"},
			},
		},
		Global: &config.Global{PrometheusEnable: true, PrometheusListen: true, PrometheusServe: "127.0.0.1:20004"},
	}
}

func TestLoadDirReference(t *testing.T) {
	s, err := config.LoadDir(loadConf)
	if err != nil {
		t.Fatal(err)
	}
	sameItems(t, s, wantLoadConf())

	var names []string
	for _, f := range s.SortedFlows() {
		names = append(names, f.Name)
		if !f.Enabled() {
			t.Errorf("flow %s is disabled", f.Name)
		}
	}
	want := []string{"StuAvg", "flowFork1", "flowName1", "flowName2", "flowName3", "flowName4", "flowName5"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("sorted flows = %v, want %v", names, want)
	}
	if got, want := len(s.SortedFuncs()), 9; got != want {
		t.Errorf("%d funcs, want %d", got, want)
	}
	if got, want := s.Conns["ConnName1"].Addresses(), []string{"0.0.0.0:9988", "0.0.0.0:9999", "0.0.0.0:9990"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Addresses() = %q, want %q", got, want)
	}

	files := map[string]string{
		s.File(config.KindFlow, "flowName1"):  "flow/flow-FlowName1.yml",
		s.File(config.KindFunc, "abortFunc"):  "func/func-AbortFunc.yml",
		s.File(config.KindConn, "ConnName1"):  "conn/conn-ConnName1.yml",
		s.File(config.KindGlobal, ""):         "kis-flow.yml",
		s.File(config.KindFunc, "noSuchFunc"): "",
	}
	for got, want := range files {
		if want != "" {
			want = filepath.Join(loadConf, filepath.FromSlash(want))
		}
		if got != want {
			t.Errorf("File() = %q, want %q", got, want)
		}
	}
}

func TestLoadFSReference(t *testing.T) {
	s, err := config.LoadFS(referenceFS(t), "load_conf")
	if err != nil {
		t.Fatal(err)
	}
	sameItems(t, s, wantLoadConf())
	if got, want := s.File(config.KindFlow, "StuAvg"), "load_conf/flow/flow-StuAvg.yml"; got != want {
		t.Errorf("File() = %q, want %q", got, want)
	}
}

func referenceFS(t *testing.T) fs.FS {
	t.Helper()
	m := fstest.MapFS{}
	err := filepath.WalkDir("testdata/kisflow", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel("testdata/kisflow", p)
		data, err := os.ReadFile(p)
		m[filepath.ToSlash(rel)] = &fstest.MapFile{Data: data}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLoadDirExportConf(t *testing.T) {
	s, err := config.LoadDir(exportConf)
	if err != nil {
		t.Fatal(err)
	}
	want := &config.Set{
		Flows: map[string]*config.Flow{
			"flowName1": {Status: 1, Name: "flowName1", Funcs: []config.FlowFunc{
				{Name: "funcName1"}, {Name: "funcName2"}, {Name: "funcName3"}}},
		},
		Funcs: map[string]*config.Func{
			"funcName1": {Name: "funcName1", Mode: config.ModeVerify,
				Source: config.Source{Name: "TikTok-Order", Must: []string{"order_id", "user_id"}}},
			"funcName2": {Name: "funcName2", Mode: config.ModeSave, Source: orderSource,
				Option: config.FuncOption{Conn: "ConnName1"}},
			"funcName3": {Name: "funcName3", Mode: config.ModeCalculate, Source: orderSource},
		},
		Conns: map[string]*config.Conn{
			"ConnName1": {Name: "ConnName1", Addrs: "0.0.0.0:9988,0.0.0.0:9999,0.0.0.0:9990", Type: "redis",
				Key: "redis-key", Params: map[string]string{"args1": "value1", "args2": "value2"},
				Save: []string{"funcName2"}}, // the file repeats funcName2
		},
	}
	sameItems(t, s, want)
}

func TestLoadFSIgnoresOtherFilesAndFields(t *testing.T) {
	fsys := fstest.MapFS{
		"conf/README.md":        {Data: []byte("# not YAML: [")},
		"conf/flow.json":        {Data: []byte("{")},
		"conf/flow-a.yml.bak":   {Data: []byte("kistype: nothing")},
		"conf/a/b/c/flow-a.yml": {Data: []byte("kistype: flow\nstatus: 1\nflow_name: a\nid: 7\nflows:\n  - fname: f\n    note: {x: 1}\n")},
		"conf/func-f.yaml":      {Data: []byte("kistype: func\nfname: f\nfmode: sAvE\nextra: [1, 2]\noption: {unknown: true}\n")},
		"other/func-g.yml":      {Data: []byte("kistype: func\nfname: g\nfmode: Load\n")},
	}
	s, err := config.LoadFS(fsys, "conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Flows) != 1 || len(s.Funcs) != 1 || len(s.Conns) != 0 || s.Global != nil {
		t.Fatalf("loaded %d flows, %d funcs, %d conns, global %v", len(s.Flows), len(s.Funcs), len(s.Conns), s.Global)
	}
	if got := s.Funcs["f"].Mode; got != config.ModeSave {
		t.Errorf("mode = %q, want %q", got, config.ModeSave)
	}
	if got := s.File(config.KindFlow, "a"); got != "conf/a/b/c/flow-a.yml" {
		t.Errorf("File() = %q", got)
	}
}

func TestLoadFSDisabledFlow(t *testing.T) {
	fsys := fstest.MapFS{
		// A disabled flow may name functions that no longer exist.
		"flow-off.yml":  {Data: []byte("kistype: flow\nstatus: 0\nflow_name: off\nflows: [{fname: gone}]\n")},
		"flow-none.yml": {Data: []byte("kistype: flow\nflow_name: none\n")},
	}
	s, err := config.LoadFS(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"off", "none"} {
		if f := s.Flows[name]; f == nil || f.Enabled() {
			t.Errorf("flow %q = %+v, want a disabled flow", name, f)
		}
	}
}

func TestLoadDedupesConnLists(t *testing.T) {
	it, err := config.Parse("conn-c.yml", []byte("kistype: conn\ncname: c\nload: [a, b, a]\nsave: [x, x, y, x]\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := it.(*config.Conn)
	if want := []string{"a", "b"}; !reflect.DeepEqual(c.Load, want) {
		t.Errorf("load = %q, want %q", c.Load, want)
	}
	if want := []string{"x", "y"}; !reflect.DeepEqual(c.Save, want) {
		t.Errorf("save = %q, want %q", c.Save, want)
	}
}

func TestParseAliasesAndMergeKeys(t *testing.T) {
	const doc = `
kistype: func
fname: f
fmode: calculate
base: &base
  cname: ""
  retry_times: 3
source: &src {name: s, must: [a, a]}
option:
  <<: *base
  return_duration: 500
  default_params: &params {k: v}
other: [*src, *params]
`
	it, err := config.Parse("func-f.yml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := &config.Func{
		Name: "f", Mode: config.ModeCalculate,
		Source: config.Source{Name: "s", Must: []string{"a", "a"}},
		Option: config.FuncOption{RetryTimes: 3, ReturnDuration: 500, DefaultParams: map[string]string{"k": "v"}},
	}
	if !reflect.DeepEqual(it, want) {
		t.Errorf("Parse = %+v, want %+v", it, want)
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]config.Mode{
		"Verify": config.ModeVerify, "calculate": config.ModeCalculate, "EXPAND": config.ModeExpand,
		"save": config.ModeSave, "lOaD": config.ModeLoad,
	} {
		got, err := config.ParseMode(in)
		if err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "Calc", " Save", "Store"} {
		if _, err := config.ParseMode(in); !errors.Is(err, config.ErrUnknownMode) {
			t.Errorf("ParseMode(%q) error = %v, want ErrUnknownMode", in, err)
		}
	}
}

func TestLoadDirMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nope")
	s, err := config.LoadDir(dir)
	if s != nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadDir = %v, %v; want nil, ErrNotExist", s, err)
	}
	if !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not name %s", err, dir)
	}
}

func TestLoadEmptyDir(t *testing.T) {
	s, err := config.LoadDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Flows)+len(s.Funcs)+len(s.Conns) != 0 || s.Global != nil {
		t.Errorf("empty dir loaded %+v", s)
	}
}
