// Package httpstatus is shared by the Go fakes (tests/servers/goose,
// tests/servers/maas; imported as "../httpstatus", a local import of GOPATH
// mode, which server.go_build uses): a ResponseWriter that remembers the
// status it answered, for their call journals and request logs.
package httpstatus

import "net/http"

// Writer remembers the status a handler answered: the first WriteHeader's
// code, or 200 once the body starts without one; 0 while nothing was
// answered (a reset connection, a handler that wrote nothing).
type Writer struct {
	http.ResponseWriter
	Status int
}

// WriteHeader records the first status and passes it on.
func (w *Writer) WriteHeader(code int) {
	if w.Status == 0 {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records the implicit 200 of a body without a WriteHeader.
func (w *Writer) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
