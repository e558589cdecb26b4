// Package router holds the parts of dyno's HTTP router that do not depend
// on how bytes move: the X-Request-Id rule, the request headers a dyno
// sees, Heroku's H error codes with their statuses and error pages, the
// heroku[router] log line, the choice of a web dyno with Heroku's 5 s
// quarantine after a refused connection, and the host table that maps a
// request's Host to its app (default hostnames and custom domains,
// wildcards included).
//
// The proxy engine that accepts connections and relays requests comes
// next; nothing here is wired into `dyno daemon` yet. Everything is
// written for a hot path: the log line appends to a caller's buffer, the
// header rewrite reuses the header's slices, and a pick allocates nothing.
package router
