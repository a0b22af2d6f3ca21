// Package schedule is KisFlow's task scheduling layer: tasks (a flow or a
// scene of flows plus a trigger), executors that share them, and the
// record of every run.
//
// # Vocabulary
//
//   - A task is a flow, or a scene (a named set of flows run side by side),
//     plus a trigger: a cron expression (with seconds, and a time zone
//     through a CRON_TZ= or TZ= prefix), a fixed interval, a one-shot time,
//     or none (on demand only).
//   - A firing is one due time of a task's trigger. Its ID is derived from
//     the task and the due time, so every executor computes the same one.
//   - An executor is a Scheduler taking part in a scene (Scene option)
//     through a Coordinator. Executors have no leader: each computes the
//     same firings and races to claim each one; the winner runs it, renews
//     its lease while it runs and completes it. A run whose lease is lost
//     is stopped at once (fencing) and recorded OutcomeLost; a later lease
//     has a greater fencing token, so the old holder cannot complete the
//     firing. The default coordinator (Memory) works within one process.
//   - A run is one execution of a firing on one executor: its flows run
//     (each flow a fresh instance from the flow.Registry), the Feed of the
//     task commits their rows, and its record (Run) holds the trigger, the
//     executor, the fencing token, start and end, the outcome, the rows in,
//     out and failed summed from the flows' pipeline Stats, the error and
//     the log lines.
//
// # Policies
//
// Per task: Overlap (a firing while a run is running: skip, queue or
// allow), Missed (firings missed while nothing ran, or when the loop woke
// up late: skip, or catch up once), Jitter (a delay derived from the
// firing, the same on every executor), Timeout (per attempt; the flows are
// shut down with flow.Flow.Shutdown, draining for at most the Grace
// period) and Retries with doubling Backoff. Skipped firings are recorded
// too (OutcomeSkipped), so nothing is skipped silently; a run's rows obey
// In = Out + Filtered + Failed + Dropped + Abandoned.
//
// # Configuration
//
// Tasks and scenes are declared in code (Scheduler.Add, AddScene) or in
// KisFlow's YAML next to the flows (`kistype: task`, `kistype: scene`,
// see package config); Scheduler.Configure adds those of a config.Set,
// reporting errors by file and field, and is what a Reload hook calls.
// A task from YAML runs its flows with flow.Flow.Run (held rows, or a
// Load function's connector); code gives it a Feed.
//
// # Across executors
//
// Each firing runs on one executor. The overlap policy is applied by each
// executor to its own runs: two executors may run consecutive firings of
// one task side by side when a run outlasts the interval.
//
// # Time
//
// Every wait goes through a Clock (WithClock): triggers, leases, timeouts,
// backoff and grace periods. Tests drive a fake clock by hand.
//
// # Record and reports
//
// A Store (OpenStore) keeps finished runs and their log lines in an
// embedded bbolt file, with retention by age and by count per task; after
// a restart it tells the scheduler which firings were missed. Summarize
// and Scheduler.Report give a task's success ratio, duration p50 and p95,
// and rows per run over a period; Scheduler.Next the next fire times.
//
// # HTTP
//
// Handler serves a JSON API and a tasks page. Reads are open; mutations
// need the configured bearer token, and are refused when there is none.
// Listen binds 127.0.0.1 unless a host is named.
//
// # Costs
//
// A Scheduler runs one loop goroutine and one goroutine watching its
// membership; each run adds one goroutine for the claim and run, one
// renewing the lease, and one per flow (plus the flows' own pipelines).
// Store.Runs and the reports read every retained run: their cost grows
// with the retention.
package schedule
