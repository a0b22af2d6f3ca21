package row

// Failure is a row that a stage gave up on under the DeadLetter policy, as
// it arrives on the pipeline's dead-letter stream.
type Failure struct {
	// Flow and Stage name where the row failed.
	Flow, Stage string
	// Row is the input row, of the stage's input type.
	Row any
	// Err is the last error the stage's function returned for it (a
	// *stage.PanicError for a panic).
	Err error
}
