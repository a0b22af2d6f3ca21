package monitor

import _ "embed"

// page is the monitor's single page: HTML, CSS and JavaScript in one file,
// with no external asset.
//
//go:embed page.html
var page []byte

// pageCSP forbids the page anything but its own inline script and style
// and requests to the server it came from.
const pageCSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
