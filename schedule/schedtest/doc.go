// Package schedtest is the contract test of [schedule.Coordinator]: every
// implementation runs [TestCoordinator] from its own tests, so that the
// in-process coordinator and those over shared stores keep one behaviour.
//
//	func TestContract(t *testing.T) {
//		schedtest.TestCoordinator(t, func(t *testing.T) schedule.Coordinator {
//			return newCoordinatorOverTheSharedStore(t)
//		})
//	}
//
// An in-process coordinator, one instance shared by every executor of the
// process, runs the contract through [Views]:
//
//	schedtest.TestCoordinator(t, schedtest.Views(t, schedule.NewMemory(nil)))
//
// What the contract leaves to each implementation, and so does not test:
// whether Renew keeps the lease's token or gives a greater one, what a
// second Claim by the holder itself returns beyond failing, and how soon
// after its ttl an unrenewed lease can be claimed again (only that it can).
package schedtest
