// Package kafka is the KisFlow connector for Apache Kafka, built on
// franz-go (github.com/twmb/franz-go).
//
// It lives in a module of its own so that the core module pulls in no
// broker client. Register it once, then build connectors from their
// configuration:
//
//	reg := connectors.NewRegistry()
//	if err := kafka.Register(reg); err != nil { ... }
//	c, err := reg.New(connectors.Config{
//		Name: "orders-bus", Type: "kafka",
//		Addrs: "kafka-1:9092,kafka-2:9092,kafka-3:9092",
//		Key:   "orders",
//		Params: map[string]string{"revoke_wait": "10s"},
//	})
//	err = c.Init(ctx)
//
// or, in KisFlow's YAML, with a `kistype: conn` document of `type: kafka`
// and a registry of connector types given to the flow package
// (flow.Connectors):
//
//	kistype: conn
//	cname: OrdersBus
//	type: kafka
//	addrs: kafka-1:9092,kafka-2:9092
//	key: orders                  # the topic
//	params:
//	  group: billing             # the flow package's: the readers' group
//	  commit_interval: 1s
//
// # Keys, topics and partitions
//
// A key is a Kafka topic. Writers and readers check that it exists and
// fail with [ErrTopicMissing] when it does not, unless the create param
// asks the connector to create it (with the partitions and
// replication_factor params, or the broker's defaults).
//
// A writer produces each message as one record: [connectors.Message.Key]
// is the record key, so the partition is chosen by the murmur2 hash of the
// key as Kafka's own clients choose it (messages of one key stay in one
// partition, in order); messages without a key are spread over the
// partitions. [connectors.Message.Headers] travel as record headers, both
// ways: a reader gets them back as a map (nil when a record has none; of
// a name repeated by another producer, the last value). The producer is
// idempotent (the broker drops the duplicates of a retried batch) and
// waits for the acknowledgement of every in-sync replica (acks=all);
// Write returns once every message of the call is stored, or after
// delivery_timeout with an error.
//
// # Groups
//
// A reader with [connectors.ReadOptions.Group] set is a member of that
// consumer group: the group's readers, in any process, share the topic's
// partitions, each partition read by one of them, and readers of
// different groups each see every record. The balancer is
// cooperative-sticky unless the balancer param says otherwise, so a
// rebalance moves only the partitions that change hands. The group's
// committed offsets say where a reader taking a partition starts; a group
// without committed offsets starts at the oldest record with
// [connectors.ReadOptions.FromStart], else at the end. Joining is
// asynchronous: Reader returns at once and the first Read waits for the
// partitions.
//
// A reader without a group reads every partition of the topic directly,
// from the start or the end, commits nothing and joins no group: each such
// reader sees every record.
//
// # The commit rule
//
// Delivery is at least once, and an offset is committed only once every
// record before it in its partition has been handled. Load (package
// [github.com/kisflow/kisflow/connectors/stream]) acknowledges a record
// once every row derived from it has been handled (delivered, filtered or
// failed into a dead-letter stream); with fan-out and parallel stages,
// acknowledgements arrive out of order. A group reader keeps, per
// partition, the records it handed out in offset order, and commits the
// offset after the last record of the acknowledged prefix: the records
// from the first unacknowledged one on stay uncommitted, however many
// later ones are acknowledged. Many records of one partition are in
// flight at once. Commits are made every commit_interval, when partitions
// are revoked, and on Close.
//
// When a rebalance takes partitions away from a reader, the client stops
// fetching them and the reader waits, up to revoke_wait, for the records
// of those partitions it handed out to be acknowledged; it then commits
// their acknowledged prefix and forgets them. A record acknowledged after
// that commits nothing: the partition's new owner reads it again. Reads
// of the reader's other partitions pause during that wait (franz-go's
// BlockRebalanceOnPoll: a rebalance and a poll never overlap, so no record
// handed out escapes the wait).
//
// A reader that dies (killed, or partitions lost when its session
// expired) commits nothing more: its partitions go to the group's other
// readers after session_timeout, starting at the last commit, so the
// records it handled since are handled again. Nothing is skipped.
//
// # Exactly once: consume, transform, produce
//
// With the exactly_once param set, a connector reads one topic in a group
// and writes what it derives to topics of the same cluster in Kafka
// transactions (franz-go's GroupTransactSession, with read-committed
// fetches and KIP-447 fencing, Kafka 2.5 or later): the records written
// and the offsets of the records read commit together, or neither does.
// Such a connector has one reader, which must have a group, and its
// writers write inside the reader's transaction (a Write with no reader
// open is an error). Every commit_interval the reader stops handing out
// records, waits (up to revoke_wait) until every record it handed out is
// acknowledged (so every row derived from them has been written), and
// commits the transaction. A rebalance in the meantime, records still in
// flight after revoke_wait, a Close with records in flight or a crash
// abort it instead: its records are invisible to read-committed readers
// (every reader of this package reads committed records only) and the
// records read are read again. A row acknowledged after an abort (it was
// stuck for longer than revoke_wait) and written again is the one case
// where a row is written twice. The transactional id is the
// transactional_id param, or, by default, the client id with a random
// suffix. After a crash, the broker aborts the open transaction when its
// timeout (franz-go's default, 40s) has passed, and read-committed
// readers of the output wait for it until then; a process that restarts
// with the same transactional_id (one per process) aborts it at once.
// In a flow, give the Load function and the Save functions that write
// what it reads one conn with exactly_once set.
//
// Two things to size and choose with it. A commit waits for every record
// in flight, so the rows the pipeline holds between the Load and the Save
// (its batch size and buffers) must drain well within revoke_wait: with a
// slow transform and large buffers, every commit could reach revoke_wait
// and abort. And keep the Save stage's default error policy (fail the
// run): under Skip or DeadLetter a failed Write still acknowledges its
// input, whose offset then commits without its output. The test that
// SIGKILLs an exactly-once worker twice mid-transaction
// (TestExactlyOnceWorkerKilled) checks that the committed output holds
// every input record exactly once.
//
// A broker never ends: Read returns records, ctx's error or an error,
// never [connectors.ErrEnded]. Stop a Load pipeline with Stop or by
// cancelling its context.
//
// # Configuration
//
// [connectors.Config.Addrs] is a comma-separated list of seed brokers
// (host:port; default 127.0.0.1:9092). [connectors.Config.Key] is the
// default topic. Params, all optional:
//
//	balancer            group balancer: cooperative-sticky, sticky, range or
//	                    round-robin (cooperative-sticky)
//	commit_interval     how often a group reader commits (1s)
//	revoke_wait         how long a revoke waits for the rows in flight of the
//	                    partitions it takes away; 0 = not at all (10s)
//	session_timeout     group session timeout: how soon the partitions of a
//	                    dead reader move on (the client's default, 45s)
//	heartbeat_interval  group heartbeat interval (the client's default, 3s)
//	fetch_max_wait      how long the broker may hold a fetch for data (5s)
//	timeout             Init's connection check, topic look-ups and commits (10s)
//	delivery_timeout    how long a written message may take to be stored,
//	                    retries included; at least 1s (30s)
//	create              "true" to create a missing topic (false)
//	partitions          partitions of a created topic (the broker's default)
//	replication_factor  replicas of a created topic (the broker's default)
//	client_id           the client id the brokers see (kisflow-<name>)
//	tls                 "true" to connect with TLS, system roots (false)
//	tls_ca              a PEM file of CA certificates to trust instead of the
//	                    system roots; needs tls=true (it does not turn TLS
//	                    on); read by New
//	sasl_mechanism      PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, with user and
//	                    password
//	exactly_once        "true" for transactions: see above (false)
//	transactional_id    the transactional id, one per process (client id
//	                    and a random suffix)
//	group, from_start   read by the flow package: the group its Load
//	                    functions read in (default: the flow's name) and
//	                    whether a new group starts at the oldest record (true)
//
// An unknown param, or a value that does not parse, fails New with an
// error naming the connector and the param.
//
// # Costs
//
// Each connector has one franz-go client for its writers and topic
// look-ups; each reader has a client of its own (a group member) and, in a
// group, one goroutine that commits. With exactly_once, reading pauses
// at every commit until the rows in flight are handled. Per record read: one tracking entry
// (allocated per Read) and one mutex-guarded step per acknowledgement. See
// bench_test.go for the comparison with franz-go used directly.
//
// # Errors
//
// Every error names the connector ([connectors.Config.Name]) and the key.
// A bad configuration wraps [connectors.ErrConfig]; a missing topic
// [ErrTopicMissing] and kerr.UnknownTopicOrPartition; use after Close
// [connectors.ErrClosed]. Init fails when no seed broker answers within
// timeout, when the brokers' TLS certificate is signed by a CA the roots
// (tls_ca or the system's) do not hold (the error wraps
// x509.UnknownAuthorityError), and when the brokers reject the SASL
// credentials (the broker's SASL_AUTHENTICATION_FAILED, or io.EOF from a
// broker that closes the connection instead, which the error explains).
// No error shows the password. While brokers are unreachable the client
// retries: Read waits, and Write fails after delivery_timeout (records it
// still holds may be stored later: at least once).
//
// # Testing without a cluster
//
// The tests run on kfake (github.com/twmb/franz-go/pkg/kfake), franz-go's
// in-process fake Kafka cluster: it speaks the real Kafka protocol on
// loopback ports (produce, fetch, groups, offsets, transactions), so the
// connector talks to it exactly as to a real cluster; it keeps data in
// memory and does not replicate. To use a real cluster, give its brokers
// in Addrs (and tls, tls_ca, sasl_mechanism, user and password as it
// requires). The tests cover TLS with a CA of their own and every SASL
// mechanism, on kfake.
package kafka
