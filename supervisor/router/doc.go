// Package router is dyno's HTTP router: one entry point for every app's
// web dynos, routing as Heroku's router does.
//
// A Router takes connections on its listeners (Serve for plain HTTP/1.x,
// ServeHTTP behind net/http's server for HTTPS, HTTP/1.1 and HTTP/2),
// finds the app by Host in its Table (default hostnames and custom
// domains, wildcards included; an unknown host gets a 404 page), and asks
// the App for a web dyno: at random among those up, skipping those
// quarantined for 5 s after refusing a connection, holding the request
// while the app's dynos boot or restart (H20 after 75 s). It connects
// (H19 after 5 s), retries another dyno when one refuses (H21 after 10
// tries), sends the request with the headers Heroku adds (Rewrite, and
// Request.AppendForward for raw heads), and relays the response: bodies
// stream both ways, chunked bodies keep their framing and flush as they
// arrive (Server-Sent Events, long polls), large ones move by splice(2),
// a WebSocket upgrade becomes a two-way tunnel, and Expect: 100-continue
// is answered by the router itself. Each request writes one
// heroku[router] line (LogLine) through a Journal, which never makes a
// request wait for the log store; failures carry Heroku's H codes, with
// their statuses and error pages.
//
// The plain HTTP path is hand-rolled on net.Conn, one goroutine per client
// connection, because net/http's server and Transport cost two to three
// times the CPU per request of a proxy that reads and writes raw
// connections. A keep-alive request allocates nothing: heads are parsed
// into spans of pooled buffers (Request.Parse, Response.Parse), rewritten
// straight into the output buffer, and the log line is appended to a
// buffer the connection keeps. Connections to dynos are pooled per dyno,
// LIFO, and dropped after BackendIdle, before the dyno's own keep-alive
// timeout. A connection waiting for its next request gives its buffers
// back, so 10,000 idle clients cost their sockets and goroutines only.
//
// On Linux, Serve puts event loops in front of that path (loop_linux.go),
// as nginx is built: one locked thread per core, each with its own
// edge-triggered epoll over the shared listening socket (EPOLLEXCLUSIVE)
// and its own pools of dyno connections, a once-a-second sweep for the
// timeouts, and no allocation per request. An ordinary request then costs
// the four socket syscalls nginx's does (read the client, write the dyno,
// read the dyno, write the client), where a goroutine per connection
// costs two more reads, because Go's netpoller tries a read before it
// parks. Whatever the loop does not serve itself (upgrades, Expect,
// chunked or large uploads, HTTP/1.0, an app whose dynos are booting) it
// hands, with the bytes already read, to the goroutine path. The head
// parser, the rewriter and the chunk scanner work on []byte with offsets,
// so both paths share them, and the conformance tests run against both.
package router
