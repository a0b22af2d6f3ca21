// Package stream joins pipelines through connectors: [Load] adds a
// pipeline source that reads a [connectors.Reader], and [Save] returns a
// stage that writes rows to a [connectors.Writer]. A [Codec] turns rows
// into message data and back; [JSON] is the usual one.
//
// Load acknowledges the messages of one read only once every row derived
// from them has been handled inside the pipeline, so a broker-backed
// reader gives at-least-once delivery. Neither Load nor Save closes the
// reader or writer it is given.
package stream
