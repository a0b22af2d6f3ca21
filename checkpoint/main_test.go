package checkpoint_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/kisflow/kisflow/internal/leaktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }
