package connectors_test

import (
	"os/exec"
	"strings"
	"testing"
)

// engine are the import paths package connectors must not depend on: the
// engine, and the goroutine pool it runs on. Connector modules import
// connectors, so whatever it pulls in they pull in too.
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

// TestNoEngineDependency lists the dependencies of this package with the go
// command and fails on any engine package among them.
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
	if len(deps) == 0 || deps[len(deps)-1] != "github.com/kisflow/kisflow/connectors" {
		t.Fatalf("go list -deps . did not list package connectors last:\n%s", out)
	}
	for _, dep := range deps {
		for _, bad := range engine {
			if dep == bad || strings.HasPrefix(dep, bad+"/") {
				t.Errorf("package connectors depends on %s; it must stay interface-only", dep)
			}
		}
	}
}
