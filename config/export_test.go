package config_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kisflow/kisflow/config"
)

func TestRoundTrip(t *testing.T) {
	for _, dir := range []string{loadConf, exportConf} {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			s, err := config.LoadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			if err := s.Export(out); err != nil {
				t.Fatal(err)
			}
			back, err := config.LoadDir(out)
			if err != nil {
				t.Fatal(err)
			}
			sameItems(t, s, back)
			if got, want := back.File(config.KindFunc, "funcName2"), filepath.Join(out, "func-funcName2.yaml"); got != want {
				t.Errorf("File() = %q, want %q", got, want)
			}

			// Exporting again writes the same bytes.
			again := t.TempDir()
			if err := back.Export(again); err != nil {
				t.Fatal(err)
			}
			for _, name := range dirNames(t, out) {
				a, _ := os.ReadFile(filepath.Join(out, name))
				b, _ := os.ReadFile(filepath.Join(again, name))
				if !bytes.Equal(a, b) {
					t.Errorf("%s differs between exports:\n%s\n%s", name, a, b)
				}
			}
		})
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestExportFileNames(t *testing.T) {
	s, err := config.LoadDir(loadConf)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "new", "dir")
	if err := s.Export(out); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"conn-ConnName1.yaml",
		"flow-StuAvg.yaml", "flow-flowFork1.yaml", "flow-flowName1.yaml", "flow-flowName2.yaml",
		"flow-flowName3.yaml", "flow-flowName4.yaml", "flow-flowName5.yaml",
		"func-AvgStuScore.yaml", "func-PrintStuAvgScore.yaml", "func-abortFunc.yaml", "func-dataReuseFunc.yaml",
		"func-funcName1.yaml", "func-funcName2.yaml", "func-funcName3.yaml", "func-jumpFunc.yaml",
		"func-noResultFunc.yaml",
		"kis-flow.yaml",
	}
	if got := dirNames(t, out); !slices.Equal(got, want) {
		t.Errorf("exported files:\n%q\nwant\n%q", got, want)
	}
	global, err := os.ReadFile(filepath.Join(out, "kis-flow.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const wantGlobal = "kistype: global\nprometheus_enable: true\nprometheus_listen: true\nprometheus_serve: 127.0.0.1:20004\n"
	if string(global) != wantGlobal {
		t.Errorf("kis-flow.yaml =\n%s\nwant\n%s", global, wantGlobal)
	}
}

// TestMarshalMatchesKisFlow checks that Marshal writes what KisFlow's own
// exporter writes, byte for byte, except that repeated connector function
// names are dropped.
func TestMarshalMatchesKisFlow(t *testing.T) {
	for _, name := range dirNames(t, exportConf) {
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(exportConf, name))
			if err != nil {
				t.Fatal(err)
			}
			it, err := config.Parse(name, want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := config.Marshal(it)
			if err != nil {
				t.Fatal(err)
			}
			if name == "conn-ConnName1.yaml" {
				want = bytes.Replace(want, []byte("    - funcName2\n    - funcName2\n"), []byte("    - funcName2\n"), 1)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Marshal =\n%s\nwant\n%s", got, want)
			}
			if fn := config.FileName(it); fn != name {
				t.Errorf("FileName = %q, want %q", fn, name)
			}
		})
	}
}

func TestMarshalNil(t *testing.T) {
	for _, it := range []config.Item{nil, (*config.Flow)(nil), (*config.Global)(nil)} {
		if _, err := config.Marshal(it); !errors.Is(err, config.ErrInvalidValue) {
			t.Errorf("Marshal(%#v) = %v, want ErrInvalidValue", it, err)
		}
		if name := config.FileName(it); name != "" {
			t.Errorf("FileName(%#v) = %q, want \"\"", it, name)
		}
	}
}

func TestExportRejectsUnsafeNames(t *testing.T) {
	tests := []struct {
		name  string
		items map[string]config.Item
		err   error
		want  string
	}{
		{"slash", map[string]config.Item{"conn.yml": &config.Conn{Name: "../../etc/c"}},
			config.ErrInvalidValue, `config: conn.yml: conn "../../etc/c": cname: invalid value: cannot be exported as file "conn-../../etc/c.yaml"`},
		{"backslash", map[string]config.Item{"conn.yml": &config.Conn{Name: `a\b`}},
			config.ErrInvalidValue, `cname: invalid value`},
		{"nul", map[string]config.Item{"conn.yml": &config.Conn{Name: "a\x00b"}},
			config.ErrInvalidValue, `cname: invalid value`},
		{"letter case", map[string]config.Item{
			"a.yml": &config.Func{Name: "Count", Mode: config.ModeCalculate},
			"b.yml": &config.Func{Name: "count", Mode: config.ModeCalculate},
		}, config.ErrDuplicate, `config: b.yml: func "count": fname: duplicate name: file "func-count.yaml" would also hold func "Count"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := new(config.Set)
			for file, it := range tt.items {
				if err := s.Add(file, it); err != nil {
					t.Fatal(err)
				}
			}
			dir := filepath.Join(t.TempDir(), "out")
			err := s.Export(dir)
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Export() = %v, want %v containing %q", err, tt.err, tt.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Export wrote %s despite the error", dir)
			}
		})
	}
}

func TestMarshalParseEveryKind(t *testing.T) {
	items := []config.Item{
		&config.Flow{Name: "off", Funcs: []config.FlowFunc{{Name: "f", Params: map[string]string{"n": "1", "b": "true", "e": ""}}}},
		&config.Func{Name: "123", Mode: config.ModeLoad, Source: config.Source{Name: "null", Must: []string{"~", "a: b"}},
			Option: config.FuncOption{Conn: "c", RetryTimes: 3, ReturnDuration: 1500}},
		&config.Conn{Name: "c", Addrs: " a , b,,", Type: "nats", Key: "k\nwith newline", Load: []string{"x"}},
		&config.Global{PrometheusServe: ":9090"},
	}
	// Strings YAML could read as something else, or write awkwardly.
	tricky := []string{"", " lead", "trail ", "\t", "a\r\nb", "a\nb\n", "\n\t x", "\u2028", "\u0085x", "\ufeffx",
		"\x00", "\xff\xfe", "#c", "a #c", "- d", "k: v", "&a", "*a", "!t", "%p", "@a", "`t", "'", "\"", "{", "[", "? q",
		": c", "|", ">", "<<", "null", "~", "True", "yes", "off", "0x10", "0o7", "1e3", ".inf", ".NaN", "2001-01-01", "---", "..."}
	params := make(map[string]string)
	for i, s := range tricky {
		params[s] = tricky[len(tricky)-1-i]
	}
	items = append(items,
		&config.Func{Name: "tricky", Mode: config.ModeVerify, Source: config.Source{Name: "\n", Must: tricky},
			Option: config.FuncOption{DefaultParams: params}},
		&config.Conn{Name: "\xff", Load: tricky, Params: params})
	for _, it := range items {
		data, err := config.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		back, err := config.Parse("x.yaml", data)
		if err != nil {
			t.Fatalf("Parse(Marshal(%+v)): %v\n%s", it, err, data)
		}
		if !reflect.DeepEqual(back, it) {
			t.Errorf("round trip of %+v gave %+v\n%s", it, back, data)
		}
	}
	if got := items[2].(*config.Conn).Addresses(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Addresses() = %q", got)
	}
}
