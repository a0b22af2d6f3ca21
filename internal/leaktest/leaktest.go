// Package leaktest holds the goleak options every test package of this
// module uses: the housekeeping goroutines of ants' default pool, started
// when ants is imported, are not leaks of ours.
package leaktest

import "go.uber.org/goleak"

// Options returns the goleak options that ignore ants' default pool.
func Options() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
	}
}
