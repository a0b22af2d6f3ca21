package nats

import (
	"testing"

	"github.com/kisflow/kisflow/schedule"
	"github.com/kisflow/kisflow/schedule/schedtest"
)

// The coordinators of the contract test are separate connections to one
// server, as the executors of separate processes would be.
func TestContract(t *testing.T) {
	url := startServer(t).ClientURL()
	schedtest.TestCoordinator(t, func(t *testing.T) schedule.Coordinator {
		return connect(t, url, testConfig)
	})
}
