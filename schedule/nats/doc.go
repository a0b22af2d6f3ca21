// Package nats is a [schedule.Coordinator] over a NATS JetStream key-value
// bucket, for executors that run in several processes. It lives in a module
// of its own so that the core module pulls in no NATS client.
//
//	c, err := nats.Connect(ctx, "nats://10.0.0.1:4222", nats.Config{})
//	m, err := c.Join(ctx, "billing", hostname)
//	l, err := c.Claim(ctx, firing, hostname, 30*time.Second)
//	... run the firing, renewing l every ttl/3 ...
//	err = c.Complete(ctx, l)
//
// # Keys
//
// One bucket (Config.Bucket, created with per-key TTLs if missing) holds
// one key per executor, "members.<scene>.<executor>", and one per firing,
// "firings.<scene>.<firing ID>", each name base64url-encoded so that any
// name makes a valid key.
//
// # Expiry is the server's
//
// Every write of a membership or a lease carries its own TTL (the
// Nats-TTL header, NATS Server 2.11 and later): the server removes the
// value when the TTL ends and leaves a marker in its place. Per-key TTLs,
// rather than the bucket's MaxAge, because leases need one TTL per claim
// (each Claim and Renew names its own), because processes configured with
// different TTLs then share one bucket configuration, and because a done
// marker needs a much longer life (the retention) than a lease. The server
// counts TTLs in whole seconds: a TTL is rounded up to one.
//
// The expiry of a lease is judged by the server alone, so clock skew
// between processes cannot let two leases live at once. A lease's Expires
// is the holder's own estimate, the ttl counted from just before its
// request: never later than the server's end of the lease (the server also
// needs up to about a second to notice an expiry).
//
// # Fencing
//
// A Claim is a write that succeeds only if the key has no value (or only
// the marker of an expired or deleted one): a compare-and-set on the key's
// last revision. Its revision, a sequence of the bucket's stream that only
// grows, is the lease's token; a later claim of the same firing has a
// greater one. Renew and Complete read the key and rewrite it only if it
// still holds the lease with their token, again as a compare-and-set on
// the revision just read. A holder whose lease expired, or was claimed
// again by another executor, is refused with [schedule.ErrLeaseLost].
// Complete writes a done marker kept for Config.DoneRetention; claims of a
// done firing fail with [schedule.ErrDone]. Deleting the bucket resets the
// revisions: never do it while executors run.
//
// # Membership
//
// Join writes the executor's key with Config.MemberTTL and starts one
// goroutine that rewrites it every TTL/3, expecting its own last revision
// (a rewrite whose reply was lost is recognised by the membership's ID in
// the value). When a rewrite is refused because the key expired or another
// Join of the same name took it over (a restarted process need not wait
// for its predecessor's key to expire), or no rewrite has succeeded for a
// TTL, the membership is lost: Lost is closed and the goroutine returns.
// Leave, Close and the end of Join's context stop the goroutine and delete
// the key at once. Executors lists the keys the server still holds, with
// the server's times.
//
// # Costs
//
// Claim is one request when the firing is free and two when it is not;
// Renew and Complete are two (a read and a conditional write). Executors
// reads the scene's members through one short-lived watcher. Each
// membership costs one goroutine and one request per TTL/3.
package nats
