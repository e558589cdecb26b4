// Hello is the example app that dyno runs: one binary with three
// process types, as a Procfile names them.
//
//	hello web      serve HTTP on $PORT
//	hello worker   log a processed job every 5 seconds
//	hello clock    log a tick every 10 seconds
//
// Each role stops cleanly on SIGTERM or SIGINT, which is how dyno
// asks its processes to stop.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// shutdownTimeout bounds how long the web role waits for requests in
// flight; it stays under the grace period that process managers give
// before SIGKILL (5 s in Foreman).
const shutdownTimeout = 4 * time.Second

func main() {
	// dyno prefixes each line with the time and the process name, so a
	// second timestamp would only add noise. Stdout, because that is the
	// stream dyno shows, and the log is not an error report.
	log.SetFlags(0)
	log.SetOutput(os.Stdout)

	if len(os.Args) != 2 {
		usage()
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)

	var err error
	switch os.Args[1] {
	case "web":
		err = web(stop)
	case "worker":
		worker(stop)
	case "clock":
		clock(stop)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "hello %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: hello web|worker|clock")
	os.Exit(2)
}

func web(stop <-chan os.Signal) error {
	port := os.Getenv("PORT")
	if port == "" {
		return errors.New("PORT is not set; run it under dyno start, or as PORT=5000 hello web")
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", home)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	server := &http.Server{
		Addr:              ":" + port,
		Handler:           logRequests(mux),
		ReadHeaderTimeout: 10 * time.Second,
	}

	// Listen before logging, so that "listening" is true when it appears
	// and a port in use fails at once.
	listener, err := net.Listen("tcp", server.Addr)
	if err != nil {
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- server.Serve(listener) }()
	log.Printf("listening on %s", listener.Addr())

	select {
	case err := <-serveErr:
		return err
	case sig := <-stop:
		log.Printf("received %v, shutting down", sig)
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := server.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	log.Print("shut down gracefully")
	return nil
}

func home(w http.ResponseWriter, r *http.Request) {
	hostname, err := os.Hostname()
	if err != nil {
		hostname = "unknown (" + err.Error() + ")"
	}
	greeting := os.Getenv("GREETING")
	if greeting == "" {
		greeting = "(GREETING is not set; add it to .env)"
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "%s\n\n", greeting)
	fmt.Fprintf(w, "dyno:     %s\n", os.Getenv("DYNO"))
	fmt.Fprintf(w, "hostname: %s\n", hostname)
	fmt.Fprintf(w, "time:     %s\n", time.Now().Format(time.RFC3339))
}

// statusRecorder remembers the status code a handler wrote, for the log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		log.Printf("%s %s %d %v", r.Method, r.URL.Path, rec.status, time.Since(start).Round(time.Microsecond))
	})
}

func worker(stop <-chan os.Signal) {
	ticker := time.NewTicker(5 * time.Second)
	defer ticker.Stop()
	log.Print("worker started")
	jobs := 0
	for {
		select {
		case <-ticker.C:
			jobs++
			log.Printf("processed job %d", jobs)
		case sig := <-stop:
			log.Printf("received %v after %d jobs, exiting", sig, jobs)
			return
		}
	}
}

func clock(stop <-chan os.Signal) {
	ticker := time.NewTicker(10 * time.Second)
	defer ticker.Stop()
	log.Print("clock started")
	for {
		select {
		case now := <-ticker.C:
			log.Printf("tick %s", now.Format(time.TimeOnly))
		case sig := <-stop:
			log.Printf("received %v, exiting", sig)
			return
		}
	}
}
