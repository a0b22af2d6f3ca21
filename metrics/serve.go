package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Path is where Server serves the metrics: KisFlow's route.
const Path = "/metrics"

// ShutdownTimeout bounds how long a Server waits for scrapes in progress
// once its context is done, before closing their connections.
const ShutdownTimeout = 5 * time.Second

// Handler returns the handler that serves the metrics of g in Prometheus'
// text format, for mounting on a mux of one's own (KisFlow's
// prometheus_listen: false).
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Server is an HTTP server with the metrics of one gatherer on Path and
// nothing else. Create it with Listen, run it with Serve.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen listens on addr (host:port; port 0 picks a free one) and returns a
// Server for g. It serves nothing until Serve is called; a Server that is
// never served must be closed with Close.
func Listen(addr string, g prometheus.Gatherer) (*Server, error) {
	if g == nil {
		return nil, errors.New("metrics: nil gatherer")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(Path, Handler(g))
	return &Server{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}, nil
}

// Addr returns the address the server listens on, such as 127.0.0.1:20004.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until ctx is done, then shuts the server down: it stops
// accepting, waits up to ShutdownTimeout for scrapes in progress, and
// returns nil once every connection is closed. It returns early: with nil
// after Close, with the error if serving fails. Serve may be called once.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil // Close was called
		}
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if err != nil {
		err = errors.Join(err, s.srv.Close())
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	err := s.srv.Close()
	if lerr := s.ln.Close(); lerr != nil && !errors.Is(lerr, net.ErrClosed) {
		err = errors.Join(err, lerr)
	}
	return err
}

// Serve serves the metrics of g on addr, at Path, until ctx is done, then
// shuts down as Server.Serve does. It is what KisFlow's global config asks
// for with prometheus_enable and prometheus_listen set: run it with
// prometheus_serve as addr, in a goroutine whose end the caller waits for.
func Serve(ctx context.Context, addr string, g prometheus.Gatherer) error {
	s, err := Listen(addr, g)
	if err != nil {
		return err
	}
	return s.Serve(ctx)
}
