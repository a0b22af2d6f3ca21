// Package connectors defines the contract between KisFlow and the backends
// that join flows: the interfaces a connector implements and the registry
// that builds connectors from their configuration. It holds no
// implementation and imports nothing of the engine, so a connector module
// depends on this package alone.
//
//   - [Connector] is a backend (a broker, or the in-memory topic): Init,
//     then any number of Writer and Reader calls, then Close.
//   - [Writer] saves [Message]s under one key (a topic, subject or stream).
//   - [Reader] loads them back as [Delivery]s, each carrying its Ack.
//   - [ReadOptions] says how readers share a key: the same group shares
//     the messages, different groups each see all of them.
//   - [Message] is one encoded row: an optional partition Key, the Data and
//     optional Headers (trace context, metadata) that cross the broker with
//     it.
//   - [Config] describes a connector as a `kistype: conn` document does;
//     [Factory] turns a Config into a Connector, and a [Registry] maps
//     connector types to their factories. A new Registry is empty:
//     programs register the types they use.
//   - [ErrEnded], [ErrClosed], [ErrUnknownType], [ErrConfig] and
//     [ErrAcked] are the sentinels connectors wrap in their errors.
//
// A Save function writes the rows of one flow to a key through a Writer; a
// Load function in another flow reads them through a Reader. Flows merge
// when several of them save to one key, and branch when several load it.
//
// # Acknowledgement
//
// Every Delivery carries an Ack, to be called exactly once, from any
// goroutine, after every row derived from the message has been handled:
// delivered, filtered, or failed into a dead-letter stream. A second call
// returns an error (wrapping [ErrAcked] where the connector can tell). A
// delivery that is never acknowledged is redelivered by connectors that
// support it, to the same reader or another of its group, so
// acknowledging late gives at-least-once delivery: a process that dies
// before acknowledging leaves the message to another reader, and nothing
// is acknowledged that was not processed.
//
// # Implementations
//
// The in-memory topic, type "memory", is package
// github.com/kisflow/kisflow/connectors/memory; the broker-backed ones live
// in modules of their own (github.com/kisflow/kisflow/connectors/nats and
// .../connectors/redis) so that the core module pulls in no broker client.
// Package github.com/kisflow/kisflow/connectors/stream turns a Reader into
// a pipeline source (Load) and a Writer into a stage (Save).
package connectors
