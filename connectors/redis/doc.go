// Package redis is the Redis Streams connector of KisFlow: Save functions
// append rows to a stream, Load functions read them through consumer
// groups, with at-least-once delivery.
//
// It lives in its own module so that the core module pulls in no Redis
// client. [Register] adds the "redis" type to a [connectors.Registry]; [New]
// builds a [Connector] directly. See [New] for the configuration: the
// server address, the default stream and the params "maxlen", "block",
// "claim_idle" and "consumer". The server must be Redis 6.2 or later
// (XAUTOCLAIM).
//
// # Streams and entries
//
// Every key is a stream. A writer appends one entry per message with XADD
// (all messages of one Write in one pipelined round trip): the field "d"
// holds the data, "k" the message key when it has one, and "h:<name>"
// ([FieldHeaderPrefix]) the value of each of its headers, which a reader
// gets back in [connectors.Message.Headers]. Entries that lack "d" are
// delivered with empty data, which Load counts as a failed row.
//
// With "maxlen" set, every XADD trims the stream to about that many entries
// (MAXLEN ~); without it the stream grows until trimmed by other means.
// Trimming does not wait for consumer groups: an entry trimmed before a
// group read it is lost to that group, and one trimmed while pending is not
// delivered again. Size maxlen for the slowest group's lag.
//
// # Groups
//
// Every reader belongs to a consumer group, created when the reader is
// opened (XGROUP CREATE ... MKSTREAM, from the first entry with FromStart,
// else from the end of the stream; an existing group is joined as it is).
//
//   - Readers that share a group, in one process or many, share its
//     messages: each message goes to one of them.
//   - Readers in different groups each see every message.
//   - A reader opened with an empty group gets a private group of its own,
//     named [PrivateGroupPrefix] followed by its consumer name. Closing the
//     reader (or the connector) destroys it. A process that dies without
//     closing leaves the group behind: it holds no data, only a cursor, and
//     an operator can list such groups with XINFO GROUPS and drop them with
//     XGROUP DESTROY.
//
// Each reader is a consumer of its group named "<consumer>-<n>", where
// consumer is the "consumer" param (by default hostname-pid-random, unique
// to the connector) and n counts the connector's readers. Closing a reader
// deletes its consumer from the group if it holds no pending message.
//
// # Acknowledgement
//
// XREADGROUP puts every message it returns in the group's pending list;
// the message stays there until acknowledged with XACK. Load acknowledges
// the deliveries of one read once every row derived from them has been
// handled inside the flow, and Delivery.Ack sends one XACK for all the
// deliveries of a read when the last of them is acknowledged. A delivery
// acknowledged alone is recorded and sent with the next XACK of the reader:
// at the next Read at the latest, or when the reader closes. Nothing is
// acknowledged that was not handled, so a crash loses no message (trimming
// aside, see above).
//
// # Reclaiming
//
// A message that stays pending for longer than "claim_idle" is taken over
// by a reader of its group with XAUTOCLAIM and delivered again, whoever
// held it: this is how the rows of a consumer that died or closed without
// acknowledging reach a live one. Readers scan for such messages inside
// Read (at their first Read, then at most every claim_idle); there is no
// background goroutine. The scan and the bounded XREADGROUP BLOCK ("block")
// alternate, so a message is reclaimed at most about claim_idle + block
// after it became idle for claim_idle.
//
// Delivery is therefore at least once: a message not acknowledged within
// claim_idle of its read is delivered again, to this reader or another, so
// claim_idle must be longer than the messages of a read can take from Read
// to acknowledgement, waiting in the flow's queues included, and rows
// should be idempotent to handle. Rows of a run that was cancelled before
// handling them come back the same way.
//
// # Ending and errors
//
// A stream never ends: Read returns messages, the error of its context, or
// an error, never [connectors.ErrEnded]; a Load source runs until its
// pipeline stops. Cancelling a Read interrupts its blocked XREADGROUP with
// CLIENT UNBLOCK. Every error names the connector, the stream and, for
// readers, the group; configuration errors wrap [connectors.ErrConfig] and
// use after Close [connectors.ErrClosed]. A Read whose group was destroyed
// or whose stream was deleted fails with Redis's NOGROUP error explained.
package redis
