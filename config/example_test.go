package config_test

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"testing/fstest"

	"github.com/kisflow/kisflow/config"
)

func ExampleLoadFS() {
	fsys := fstest.MapFS{
		"conf/flow-CalStuAvgScore.yml": {Data: []byte(`
kistype: flow
status: 1
flow_name: CalStuAvgScore
flows:
  - fname: AvgStuScore
    params: {precision: "2"}
  - fname: PrintStuAvgScore
`)},
		"conf/func-AvgStuScore.yml": {Data: []byte(`
kistype: func
fname: AvgStuScore
fmode: Calculate
source:
  name: StudentScore
  must: [stu_id]
option:
  default_params: {precision: "1", unit: points}
`)},
		"conf/func-PrintStuAvgScore.yml": {Data: []byte(`
kistype: func
fname: PrintStuAvgScore
fmode: expand
source:
  name: StudentScore
  must: [stu_id]
`)},
	}
	s, err := config.LoadFS(fsys, "conf")
	if err != nil {
		log.Fatal(err)
	}
	for _, flow := range s.SortedFlows() {
		if !flow.Enabled() {
			continue
		}
		fmt.Println("flow", flow.Name)
		for _, ff := range flow.Funcs {
			fmt.Println(" ", ff.Name, s.Funcs[ff.Name].Mode, s.Params(flow.Name, ff.Name))
		}
	}

	// A reference to a missing function is reported with file and field.
	fsys["conf/flow-CalStuAvgScore.yml"].Data = []byte("kistype: flow\nstatus: 1\nflow_name: CalStuAvgScore\nflows: [{fname: Missing}]\n")
	_, err = config.LoadFS(fsys, "conf")
	fmt.Println(errors.Is(err, config.ErrUnknownReference))
	fmt.Println(err)
	// Output:
	// flow CalStuAvgScore
	//   AvgStuScore Calculate map[precision:2 unit:points]
	//   PrintStuAvgScore Expand map[]
	// true
	// config: conf/flow-CalStuAvgScore.yml: flow "CalStuAvgScore": flows[0].fname: unknown reference: function "Missing" is not defined
}

func ExampleMarshal() {
	it, err := config.Parse("conn-ConnName1.yml", []byte(`
kistype: conn
cname: ConnName1
addrs: '0.0.0.0:9988,0.0.0.0:9999'
type: redis
key: redis-key
load: null
save: [funcName2, funcName2]
`))
	if err != nil {
		log.Fatal(err)
	}
	data, err := config.Marshal(it)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(data))
	// Output:
	// kistype: conn
	// cname: ConnName1
	// addrs: 0.0.0.0:9988,0.0.0.0:9999
	// type: redis
	// key: redis-key
	// params: {}
	// load: []
	// save:
	//     - funcName2
}

func ExampleSet_Export() {
	var s config.Set
	for _, it := range []config.Item{
		&config.Global{PrometheusEnable: true, PrometheusServe: "127.0.0.1:20004"},
		&config.Flow{Status: config.StatusEnabled, Name: "orders", Funcs: []config.FlowFunc{{Name: "check"}}},
		&config.Func{Name: "check", Mode: config.ModeVerify},
	} {
		if err := s.Add("", it); err != nil {
			log.Fatal(err)
		}
	}
	dir, err := os.MkdirTemp("", "kisflow-config")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	if err := s.Export(dir); err != nil {
		log.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		fmt.Println(e.Name())
	}
	data, _ := os.ReadFile(filepath.Join(dir, "func-check.yaml"))
	fmt.Print(string(data))
	// Output:
	// flow-orders.yaml
	// func-check.yaml
	// kis-flow.yaml
	// kistype: func
	// fname: check
	// fmode: Verify
	// source:
	//     name: ""
	//     must: []
	// option:
	//     cname: ""
	//     retry_times: 0
	//     return_duration: 0
	//     default_params: {}
}
