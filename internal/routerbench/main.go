// Command routerbench runs the router in front of small local backends,
// for measuring it beside nginx with wrk while developing (see run.sh):
//
//	routerbench -listen 127.0.0.1:8090 -backends 127.0.0.1:18081,127.0.0.1:18082
//	routerbench -okserver 127.0.0.1:18081
//
// With -okserver it is instead the backend: a keep-alive HTTP/1.1 server
// answering every request with "ok\n".
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/dyno-run/dyno/supervisor/router"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8090", "where the router listens")
	backends := flag.String("backends", "127.0.0.1:18081", "comma-separated backend addresses (web.1, web.2, ...)")
	okserver := flag.String("okserver", "", "be an ok backend on this address instead of the router")
	loops := flag.Int("loops", 0, "event loops: 0 one per core, -1 none (goroutines)")
	gcstats := flag.Bool("gcstats", false, "print GC cycles and allocations every second")
	memprofile := flag.String("memprofile", "", "record every allocation and write the profile here at exit")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the first 10 s after the first request here")
	flag.Parse()
	if *okserver != "" {
		serveOK(*okserver)
		return
	}
	if *memprofile != "" {
		runtime.MemProfileRate = 1
		// A base profile after 5 s: pprof -base shows the steady state.
		go func() {
			time.Sleep(5 * time.Second)
			f, err := os.Create(*memprofile + ".base")
			if err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	hosts, err := router.NewHosts("localhost")
	if err != nil {
		log.Fatal(err)
	}
	hosts.AddApp("bench")
	app := router.NewApp("bench", time.Now)
	var up []router.Backend
	for i, a := range strings.Split(*backends, ",") {
		up = append(up, router.Backend{Dyno: fmt.Sprintf("web.%d", i+1), Addr: a})
	}
	app.Update(router.Running, up)
	j := router.NewJournal(discard{}, 0)
	r := router.New(router.Config{Journal: j, EventLoops: *loops})
	r.SetTable(router.NewTable(hosts, map[string]*router.App{"bench": app}))
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.Shutdown(ctx)
	}()
	if *gcstats {
		go func() {
			var m runtime.MemStats
			for range time.Tick(time.Second) {
				runtime.ReadMemStats(&m)
				fmt.Fprintf(os.Stderr, "gc=%d mallocs=%d heap=%dKB\n", m.NumGC, m.Mallocs, m.HeapAlloc>>10)
			}
		}()
	}
	_ = debug.SetGCPercent
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			time.Sleep(3 * time.Second)
			pprof.StartCPUProfile(f)
			time.Sleep(10 * time.Second)
			pprof.StopCPUProfile()
			f.Close()
			fmt.Fprintln(os.Stderr, "profile written")
		}()
	}
	fmt.Fprintln(os.Stderr, "router on", ln.Addr())
	err = r.Serve(ln, "http")
	fmt.Fprintln(os.Stderr, "serve:", err)
	if *memprofile != "" {
		f, err := os.Create(*memprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.Lookup("allocs").WriteTo(f, 0)
		f.Close()
	}
}

type discard struct{}

func (discard) RouterLines(app string, lines []byte)       {}
func (discard) Dropped(app string, n int, since time.Time) {}

// serveOK answers each request on each connection with "ok\n", keeping
// connections alive: a backend that costs as little as it can.
func serveOK(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	const resp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			defer c.Close()
			br := bufio.NewReaderSize(c, 16<<10)
			for {
				cl := 0
				// Read a head: lines to the empty one; bodies by Content-Length.
				for first := true; ; first = false {
					line, err := br.ReadSlice('\n')
					if err != nil {
						return
					}
					if len(line) <= 2 && !first {
						break
					}
					if len(line) > 16 && strings.EqualFold(string(line[:15]), "content-length:") {
						fmt.Sscanf(strings.TrimSpace(string(line[15:])), "%d", &cl)
					}
				}
				if cl > 0 {
					if _, err := br.Discard(cl); err != nil {
						return
					}
				}
				if br.Buffered() == 0 {
					if _, err := c.Write([]byte(resp)); err != nil {
						return
					}
				} else if _, err := c.Write([]byte(resp)); err != nil {
					return
				}
			}
		}()
	}
}
