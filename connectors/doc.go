// Package connectors defines the Save/Load backends that join flows: the
// [Connector] interface, a [Registry] of connector types, and the in-memory
// topic that is the embedded default.
//
// A Save function writes the rows of one flow to a connector key through a
// [Writer]; a Load function in another flow reads them through a [Reader].
// Flows merge when several of them save to one key, and branch when several
// load it: readers in different groups each see every message, readers in
// one group share them.
//
// # Acknowledgement
//
// Every [Delivery] carries an Ack. The pipeline calls it only when every row
// derived from the message is handled, so a broker-backed connector gives
// at-least-once delivery: a process that dies before that point leaves the
// message unacknowledged and the broker hands it to another reader.
//
// Broker-backed connectors live in their own modules (connectors/nats,
// connectors/redis) so this module pulls in no broker client.
//
// # The in-memory topic
//
// [Memory], type "memory", joins flows of one process without a broker. Each
// key is a bounded log (Params["capacity"] messages, default 4096) that keeps
// every message until all groups have acknowledged it, so the slowest group
// holds writers back instead of letting memory grow. A reader that closes
// with unacknowledged deliveries hands them back to its group, first in line
// for its other or later readers. A key ends, and its readers get [ErrEnded]
// once they have drained it, when every writer opened on it has closed (and
// at least as many were opened as its writers param says); a new writer
// reopens it. Memory starts no goroutines.
package connectors
