package config

// Test-only views of unexported helpers, for the external tests.

func (s *Set) SortedConns() []*Conn                            { return s.sortedConns() }
func (s *Set) SortedFlows() []*Flow                            { return s.sortedFlows() }
func (s *Set) SortedFuncs() []*Func                            { return s.sortedFuncs() }
func (s *Set) Params(flowName, fname string) map[string]string { return s.params(flowName, fname) }
func (c *Conn) Addresses() []string                            { return c.addresses() }

var (
	FileName  = fileName
	ParseMode = parseMode
)
