// go-hello is a web app that the Go example buildpack builds into a slug:
// it answers on $PORT with the dyno's name and stops cleanly on SIGTERM.
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	log.SetFlags(0)
	port := os.Getenv("PORT")
	if port == "" {
		log.Fatal("PORT is not set; dyno sets it for every dyno")
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Hello from %s (release %s)\n", os.Getenv("DYNO"), os.Getenv("RELEASE_NAME"))
		log.Printf("%s %s", r.Method, r.URL.Path)
	})
	srv := &http.Server{Addr: ":" + port}
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
		<-stop
		log.Print("SIGTERM received, shutting down")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	log.Printf("listening on :%s", port)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
	log.Print("stopped")
}
