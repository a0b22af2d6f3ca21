// Package pebble keeps a pipeline's checkpoints on disk, in a Pebble
// database (github.com/cockroachdb/pebble): the durable
// checkpoint.Store.
//
// Layout: each part of checkpoint id is stored in chunks of at most 1 MiB
// under "c" + id + part; the newest complete checkpoint's id and
// description sit under one key, written in the same synced batch that
// deletes every older checkpoint, so a checkpoint is complete exactly
// when that batch is on disk. Parts are written without a sync: the
// synced completion makes them durable with it.
//
// Cost: a part of n bytes is n/1 MiB keys in one batch; completing a
// checkpoint is one synced write.
package pebble
