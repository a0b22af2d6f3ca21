// Package nats is the KisFlow connector for NATS JetStream.
//
// It lives in a module of its own so that the core module pulls in no
// broker client. Register it once, then build connectors from their
// configuration:
//
//	reg := connectors.NewRegistry()
//	if err := nats.Register(reg); err != nil { ... }
//	c, err := reg.New(connectors.Config{
//		Name: "orders-bus", Type: "nats",
//		Addrs: "nats://10.0.0.1:4222,nats://10.0.0.2:4222",
//		Key:   "orders",
//		Params: map[string]string{"ack_wait": "30s", "partitions": "8"},
//	})
//	err = c.Init(ctx)
//
// # Keys, subjects and streams
//
// A key is a NATS subject without wildcards ("orders", "shop.orders").
// A writer publishes every message to the subject named by the key, or,
// with the partitions param set to N > 0, to the subject "<key>.<p>" where
// p is the 32-bit FNV-1a hash of [connectors.Message.Key] modulo N
// (messages without a key go round robin). The message key travels in the
// [KeyHeader] header.
//
// [connectors.Message.Headers] travel as NATS message headers of the same
// names, one value each, and a reader gets them back (without KeyHeader).
// Write refuses, before publishing anything, a header NATS could not carry
// unchanged: a name that is empty, is KeyHeader, or has a space, colon or
// control character, and a value with a line break or surrounding white
// space. Headers whose names start with "Nats-" mean something to the
// server (Nats-Msg-Id, for one, deduplicates publishes).
//
// The messages are stored in a JetStream stream: the one named by the
// stream param, or else the stream that already captures the key's
// subjects. If there is none (and the create param is not false) the
// connector creates one named after the key (dots turned into '_') that
// captures "<key>" and "<key>.*", with limits retention, so that every
// group sees every message until max_age or the stream limits drop it.
//
// # Groups
//
// A reader is a JetStream pull consumer with explicit acknowledgement.
// [connectors.ReadOptions.Group] names a durable consumer on the key's
// stream: every reader of one group, in any process, pulls from the same
// durable, so each message goes to one of them; readers of different
// groups (different durables) each see every message. A reader without a
// group gets a private consumer, deleted by its Close (or by the server
// five minutes after its last pull, should the process die).
// [connectors.ReadOptions.FromStart] chooses, when the durable is created,
// between delivering every stored message and only those stored from then
// on; a durable that exists keeps its position.
//
// With partitions, the order of one key's messages is kept in its
// partition subject. Readers of one group share the messages of every
// partition, so two messages of one key can be handled at once by two
// readers. For strict per-key order, give each partition set one reader:
// the read_partitions param restricts a reader to some partitions, and its
// durable is then named "<group>_p<list>" (for example "billing_p0_2").
//
// # Acknowledgement and redelivery
//
// Delivery is at least once. Load (package
// [github.com/kisflow/kisflow/connectors/stream]) acknowledges the
// messages of one read only when every row derived from them has been
// handled inside the flow (delivered, filtered or failed into a dead-letter
// stream). A message that is not acknowledged within ack_wait (because
// the process died, the run was cancelled or a stage is too slow) is
// delivered again, to any reader of the group. A Read whose ctx ends
// hands back (naks) the messages it pulled but did not return, so they go
// to another reader at once. Nothing is acknowledged that was not
// processed. Write returns once the stream has stored each message; after
// a failed Write some of its messages may be stored, and a retry stores
// them again.
//
// A broker never ends: Read returns messages, ctx's error or an error,
// never [connectors.ErrEnded]. Stop a Load pipeline with Stop or by
// cancelling its context.
//
// # Configuration
//
// [connectors.Config.Addrs] is a comma-separated list of server URLs
// (default nats://127.0.0.1:4222); credentials can be given in the URL
// (nats://user:pass@host:4222, nats://token@host:4222) and tls:// asks for
// TLS. [connectors.Config.Key] is the default key. Params, all optional:
//
//	stream           stream name to use for every key (default: the stream
//	                 capturing the key, else one created per key)
//	create           "false" to fail rather than create a missing stream (true)
//	storage          "file" or "memory", for a created stream (file)
//	replicas         replicas of a created stream (1)
//	max_age          how long a created stream keeps messages, 0 = no limit (0)
//	partitions       number of partition subjects writers spread keys over (0)
//	read_partitions  comma-separated partitions a reader reads ("" = all)
//	ack_wait         redelivery delay of unacknowledged messages (30s)
//	max_ack_pending  unacknowledged messages a group may hold (4096)
//	fetch_wait       how long one idle pull waits before the next (2s)
//	fetch_max        most messages one Read takes, 0 = as many as asked;
//	                 small values spread small bursts over a group (0)
//	publish_window   publishes one Write keeps awaiting acknowledgement (256)
//	timeout          publish acknowledgement and API request timeout (10s)
//	double_ack       "true" makes Ack wait for the server's confirmation (false)
//	max_reconnects   reconnection attempts after the connection is lost;
//	                 -1 = for ever, 0 = none (60)
//	reconnect_wait   pause between reconnection attempts to one server (2s)
//	creds            path of a NATS credentials file
//
// ack_wait and max_ack_pending are applied to a group's durable when a
// reader opens it; the other stream settings only when the connector
// creates the stream.
//
// # Errors
//
// Every error names the connector ([connectors.Config.Name]) and the key.
// A bad configuration, a missing stream with create=false or a durable
// that does not fit wraps [connectors.ErrConfig]; use after Close wraps
// [connectors.ErrClosed]; the client's own errors (such as
// jetstream.ErrStreamNotFound) are wrapped too. While the connection is
// being re-established, Read and Write wait for it (Write then publishes
// again the messages whose acknowledgement was lost); once the connection
// is lost for good (max_reconnects used up), both return an error saying
// so.
package nats
