package schedule

import (
	_ "embed"
	"net/http"
)

// tasksPage is the tasks page: HTML, CSS and JavaScript in one file, with
// no external asset. It reads the JSON API by relative paths.
//
//go:embed tasks.html
var tasksPage []byte

// pageCSP forbids the page anything but its own inline script and style
// and requests to the server it came from.
const pageCSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (h *Handler) page(w http.ResponseWriter, _ *http.Request) {
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("Content-Security-Policy", pageCSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(tasksPage)
}
