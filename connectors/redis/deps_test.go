package redis

import (
	"os/exec"
	"strings"
	"testing"
)

// engine are the import paths the redis connector must not depend on: the
// engine, and the goroutine pool it runs on. Its tests and examples may use
// them (connectors/stream joins it to pipelines); its code imports only
// package connectors of the core module.
var engine = []string{
	"github.com/panjf2000/ants",
	"github.com/kisflow/kisflow/backpressure",
	"github.com/kisflow/kisflow/connectors/stream",
	"github.com/kisflow/kisflow/fanout",
	"github.com/kisflow/kisflow/flow",
	"github.com/kisflow/kisflow/pipeline",
	"github.com/kisflow/kisflow/row",
	"github.com/kisflow/kisflow/stage",
}

// TestNoEngineDependency lists the dependencies of this package (not of its
// tests) with the go command and fails on any engine package among them.
func TestNoEngineDependency(t *testing.T) {
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(gocmd, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps .: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != "github.com/kisflow/kisflow/connectors/redis" {
		t.Fatalf("go list -deps . did not list package redis last:\n%s", out)
	}
	for _, dep := range deps {
		for _, bad := range engine {
			if dep == bad || strings.HasPrefix(dep, bad+"/") {
				t.Errorf("package redis depends on %s; only its tests may", dep)
			}
		}
	}
}
