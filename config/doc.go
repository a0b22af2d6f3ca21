// Package config loads, validates and exports KisFlow's YAML configuration.
//
// A configuration is a directory of YAML files, one document per file. The
// document's kistype field says what it describes:
//
//	kistype: flow              # a Flow: a named chain of functions
//	status: 1                  # 1 enabled, 0 (or absent) disabled
//	flow_name: CalStuAvgScore  # required, unique among flows
//	flows:                     # the functions, in the order they run
//	  - fname: AvgStuScore     # required; names a func
//	    params: {k: v}         # overrides the func's default_params
//
//	kistype: func              # a Func
//	fname: AvgStuScore         # required, unique among funcs
//	fmode: Calculate           # required: Verify, Calculate, Expand, Save or Load (any letter case)
//	source:
//	  name: StudentScore
//	  must: [stu_id]
//	option:
//	  cname: ConnName1         # names a conn; may be absent
//	  retry_times: 0           # 0 or more
//	  return_duration: 0       # milliseconds, 0 or more
//	  default_params: {k: v}
//	  # Additions to KisFlow's schema (package window, package keyed):
//	  key: sensor_id           # the row field (JSON name) keying the function's rows
//	  window:                  # needs key; the function is called once per window
//	    type: tumbling         # tumbling, sliding or session
//	    size: 10s              # tumbling and sliding
//	    slide: 5s              # sliding: at most size
//	    gap: 30s               # session
//	    time_field: ts         # event time (a time, or Unix milliseconds); absent: processing time
//	    out_of_order: 2s       # event time only
//	    lateness: 1m           # event time only
//
//	kistype: conn              # a Conn
//	cname: ConnName1           # required, unique among conns
//	addrs: '0.0.0.0:9988,0.0.0.0:9999'
//	type: redis                # redis, nats, memory, ...
//	key: redis-key
//	params: {k: v}
//	load: [funcName1]          # repeated names are dropped
//	save: [funcName2]
//
//	kistype: global            # the Global settings; at most one
//	prometheus_enable: true
//	prometheus_listen: true
//	prometheus_serve: 127.0.0.1:20004
//
//	kistype: scene             # a Scene: flows a task runs together
//	scene_name: students       # required, unique among scenes
//	flows: [CalStuAvgScore, TopStudents]  # at least one; each names a flow
//
//	kistype: task              # a Task: what to run, when and how (package schedule)
//	task_name: scores          # required, unique among tasks
//	scene: students            # or flow: CalStuAvgScore; exactly one
//	trigger:                   # at most one of cron, every, at; none: on demand
//	  cron: "CRON_TZ=Asia/Shanghai */2 * * * * *"  # seconds optional
//	  # every: 2s              # a Go duration, with an optional offset: 1s
//	  # at: 2026-12-01T08:00:00Z
//	overlap: skip              # skip, queue or allow (default skip)
//	missed: catch-up           # skip or catch-up (default skip)
//	jitter: 500ms              # Go durations, 0 or more
//	timeout: 30s
//	retries: 1                 # 0 or more
//	backoff: 1s
//	paused: false
//
// kistype values are matched exactly; fmode values in any letter case and
// stored in their canonical spelling (see parseMode). Fields the schema
// does not name are ignored, but a known field with a value of the wrong
// type (status: abc) is an error.
//
// LoadDir and LoadFS read a directory tree into a Set and validate it;
// Parse reads one document. Set.Export and Marshal write documents back in
// the layout KisFlow's own exporter uses, and what they write loads back
// to an equal Set.
//
// # Disabled flows
//
// A flow whose status is 0, or has no status, is disabled. It is kept in
// the Set, so that tools see the whole configuration, but Flow.Enabled
// reports false and a consumer must not run it. Its function references
// are not checked.
//
// # Errors
//
// Every problem with a configuration is reported as an *Error naming the
// file, the item and the YAML field, such as
//
//	config: flow-a.yml: flow "a": flows[2].fname: unknown reference: function "f" is not defined
//
// and wrapping one sentinel, to test with errors.Is:
//
//   - ErrMalformed: not YAML, not one mapping, or a value of the wrong type;
//   - ErrUnknownKind: a kistype other than flow, func, conn, global, task
//     or scene;
//   - ErrUnknownMode: an fmode that is not one of the modes;
//   - ErrMissingField: an absent or empty kistype, flow_name, fname, fmode,
//     cname or flows[i].fname, a window without a key, out_of_order or
//     lateness without a time_field;
//   - ErrDuplicate: two items of one kind with one name, or two globals
//     (the error names both files); in a Set built in code, a name repeated
//     in a connector's load or save list (files may repeat them: loading
//     drops the repeats);
//   - ErrInvalidValue: a status other than 0 or 1, a negative retry_times
//     or return_duration, a window of an unknown type or without its size
//     or gap, a slide above the size, a duration that does not parse;
//   - ErrUnknownReference: a flow entry naming a function, a function
//     naming a connector, a task naming a flow or scene, or a scene naming
//     a flow, that the Set does not hold.
//
// Loading a directory reports every problem in every file, joined with
// errors.Join, and returns no Set at all when there is any.
package config
