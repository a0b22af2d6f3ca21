// Package schedule is KisFlow's task scheduling layer: tasks (a flow or a
// scene of flows plus a trigger), executors that share them, and the record
// of every run.
//
// This file set is the contract between the scheduler and its coordinators;
// the scheduler itself is being built on it.
package schedule
