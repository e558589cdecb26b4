package router

import "html"

// Code is one of Heroku's router error codes (H10 and so on). The zero
// Code is no error: a request the dyno answered.
type Code uint8

// The codes the router gives. Statuses, levels and descriptions are
// Heroku's.
const (
	OK  Code = iota
	H10      // no web dyno running because they crashed
	H12      // no response byte within 30 s
	H13      // the dyno closed the connection without a response
	H14      // no web dynos in the formation
	H15      // the dyno sent nothing for 55 s mid-response
	H18      // the dyno closed the connection mid-response
	H19      // connecting to the dyno took over 5 s
	H20      // no web dyno came up within 75 s while the request waited
	H21      // the dyno refused the connection, after retries
	H25      // a request or response over the router's limits
	H26      // a malformed request
	H27      // the client went away before the response
	H28      // the client sent nothing for 55 s
	H80      // the app is in maintenance mode
	H81      // the app has no release yet
	H99      // a fault in the router itself
	numCodes
)

type codeInfo struct {
	name   string
	status int
	level  string
	sock   string
	desc   string
	hint   string // what the app's owner can do, for the error page
}

// info is the table of codes, a switch rather than a mutable global.
func info(c Code) codeInfo {
	switch c {
	case H10:
		return codeInfo{"H10", 503, "error", "", "App crashed", "The app's web dynos have crashed. Its owner can read why with dyno logs and start them again with dyno ps:restart web."}
	case H12:
		return codeInfo{"H12", 503, "error", "", "Request timeout", "The app did not start answering within 30 seconds. Its owner can make slow work happen in a worker and answer sooner."}
	case H13:
		return codeInfo{"H13", 503, "error", "", "Connection closed without response", "The app closed the connection without answering. Its owner can read dyno logs for a crash or an early close."}
	case H14:
		return codeInfo{"H14", 503, "error", "", "No web processes running", "The app runs no web dynos. Its owner can start one with dyno ps:scale web=1."}
	case H15:
		return codeInfo{"H15", 503, "error", "", "Idle connection", "The app sent nothing for 55 seconds in the middle of a response. Its owner can send data or a keep-alive more often."}
	case H18:
		return codeInfo{"H18", 503, "error", "backend", "Server Request Interrupted", "The app closed the connection in the middle of the request. Its owner can read dyno logs for a crash."}
	case H19:
		return codeInfo{"H19", 503, "error", "", "Backend connection timeout", "The app's web dyno did not accept a connection within 5 seconds. Its owner can check whether it is overloaded."}
	case H20:
		return codeInfo{"H20", 503, "error", "", "App boot timeout", "No web dyno of the app came up within 75 seconds. Its owner can read dyno logs to see why it boots slowly or not at all."}
	case H21:
		return codeInfo{"H21", 503, "error", "", "Backend connection refused", "The app's web dynos refused the connection. Its owner can check that the web process listens on $PORT."}
	case H25:
		return codeInfo{"H25", 502, "error", "", "HTTP Restriction", "The request or the app's response broke an HTTP limit (a header or status line too long, an invalid length). Its owner can shorten it."}
	case H26:
		return codeInfo{"H26", 400, "error", "", "Request Error", "The request was not valid HTTP. The client can send it again, well formed."}
	case H27:
		return codeInfo{"H27", 499, "warning", "client", "Client Request Interrupted", "The client went away before the response was sent."}
	case H28:
		return codeInfo{"H28", 499, "warning", "", "Client Connection Idle", "The client sent nothing for 55 seconds."}
	case H80:
		return codeInfo{"H80", 503, "info", "", "Maintenance mode", "The app is offline for maintenance and will be back shortly. Its owner turns this off with dyno maintenance:off."}
	case H81:
		return codeInfo{"H81", 503, "info", "", "Blank app", "The app has no release yet. Its owner can deploy code to it with dyno build."}
	case H99:
		return codeInfo{"H99", 503, "error", "", "Platform error", "The router failed: a fault in dyno, not in the app. Its owner can read the daemon's log and report it."}
	}
	return codeInfo{"", 200, "info", "", "", ""}
}

// String is the code's name, "H14"; "" for OK.
func (c Code) String() string { return info(c).name }

// Status is the HTTP status the router answers with.
func (c Code) Status() int { return info(c).status }

// Desc is Heroku's description, the desc= field of the log line.
func (c Code) Desc() string { return info(c).desc }

// Level is the at= field: "info" for OK, H80 and H81, "warning" for the
// client's own failures (H27, H28), "error" otherwise.
func (c Code) Level() string { return info(c).level }

// Sock is the sock= field that begins the line, "backend" for H18 and
// "client" for H27, "" for the rest.
func (c Code) Sock() string { return info(c).sock }

// Page is the HTML page the router answers with: plain, with no external
// assets, naming the error and what the app's owner can do.
func (c Code) Page() string {
	i := info(c)
	if i.name == "" {
		return ""
	}
	title := html.EscapeString(i.desc) + " (" + i.name + ")"
	heading := "Application error"
	if c == H80 {
		heading = "Offline for maintenance"
	}
	return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + title +
		"</title></head>\n<body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\">\n<h1>" + heading + "</h1>\n<p>" +
		title + "</p>\n<p>" + html.EscapeString(i.hint) + "</p>\n</body></html>\n"
}
