package config_test

import (
	"maps"
	"testing"

	"github.com/kisflow/kisflow/config"
)

func TestParams(t *testing.T) {
	s, err := config.LoadDir(loadConf)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		flow, fname string
		want        map[string]string
	}{
		// The flow's params override the function's default_params.
		{"flowName1", "funcName1", map[string]string{
			"default1": "funcName1_param1", "default2": "funcName1_param2",
			"myKey1": "flowValue1-1", "myKey2": "flowValue1-2"}},
		{"flowFork1", "funcName3", map[string]string{
			"default1": "funcName3_param1", "default2": "funcName3_param2", "myKey1": "flowValue3-1"}},
		// No flow params: the defaults alone.
		{"flowName5", "funcName2", map[string]string{"default1": "funcName2_param1", "default2": "funcName2_param2"}},
		// Neither.
		{"StuAvg", "AvgStuScore", map[string]string{}},
		// Unknown names contribute nothing.
		{"noSuchFlow", "funcName1", map[string]string{"default1": "funcName1_param1", "default2": "funcName1_param2"}},
		{"flowName1", "noSuchFunc", map[string]string{}},
		{"flowName4", "funcName2", map[string]string{"default1": "funcName2_param1", "default2": "funcName2_param2"}},
	}
	for _, tt := range tests {
		got := s.Params(tt.flow, tt.fname)
		if got == nil || !maps.Equal(got, tt.want) {
			t.Errorf("Params(%q, %q) = %v, want %v", tt.flow, tt.fname, got, tt.want)
		}
	}

	// A flow's value for a default key wins, and the result is a copy.
	s.Flows["flowFork1"].Funcs[0].Params["default1"] = "fromFlow"
	got := s.Params("flowFork1", "funcName1")
	if got["default1"] != "fromFlow" || got["myKey1"] != "flowValue1-1" || got["default2"] != "funcName1_param2" {
		t.Errorf("Params = %v", got)
	}
	got["default2"] = "changed"
	if s.Funcs["funcName1"].Option.DefaultParams["default2"] != "funcName1_param2" {
		t.Error("Params returned a map shared with the Set")
	}
}

func TestParamsFirstEntry(t *testing.T) {
	var s config.Set
	for _, it := range []config.Item{
		&config.Flow{Status: 1, Name: "twice", Funcs: []config.FlowFunc{
			{Name: "f", Params: map[string]string{"k": "first"}},
			{Name: "f", Params: map[string]string{"k": "second"}},
		}},
		&config.Func{Name: "f", Mode: config.ModeExpand, Option: config.FuncOption{DefaultParams: map[string]string{"k": "default", "d": "x"}}},
	} {
		if err := s.Add("mem", it); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := s.Params("twice", "f"), map[string]string{"k": "first", "d": "x"}; !maps.Equal(got, want) {
		t.Errorf("Params = %v, want %v", got, want)
	}
}
