// A tiny web app for dyno: answers on $PORT with $GREETING (a config
// var), the dyno's name and how long it has been up, and stops cleanly on
// SIGTERM, which is how a dyno is asked to stop. Node's own modules only:
// the build needs no registry.
"use strict";

const http = require("http");

const port = Number(process.env.PORT) || 5000;
const dyno = process.env.DYNO || "(not in a dyno)";
// Read on each request from the environment the dyno started with: a
// config:set restarts the dynos, and the new value shows.
const greeting = () => process.env.GREETING || "Hello";
const started = Date.now();

// uptime says a duration in its largest whole unit: "42 seconds".
function uptime(msec) {
  const units = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
  const secs = Math.floor(msec / 1000);
  for (const [name, size] of units) {
    const n = Math.floor(secs / size);
    if (n >= 1 || size === 1) return `${n} ${name}${n === 1 ? "" : "s"}`;
  }
}

// database names the database DATABASE_URL (set by `dyno addons:create
// heroku-postgresql`) points at, never its password: the var arrives in
// a new release, and the dynos restart on it.
function database() {
  if (!process.env.DATABASE_URL) return "";
  try {
    const u = new URL(process.env.DATABASE_URL);
    return `database: ${u.pathname.slice(1)} on ${u.host}\n`;
  } catch {
    return "database: DATABASE_URL is not a URL\n";
  }
}

const server = http.createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "Content-Type": "text/plain" });
    res.end("ok\n");
    return;
  }
  res.writeHead(200, { "Content-Type": "text/plain" });
  res.end(`${greeting()} from ${dyno}\nnode ${process.version}, up ${uptime(Date.now() - started)}\n${database()}`);
  console.log(`${req.method} ${req.url} 200`);
});

server.listen(port, () => {
  console.log(`listening on :${port}`);
});

let stopping = false;
function stop(signal) {
  if (stopping) return; // a dyno may get SIGTERM more than once
  stopping = true;
  console.log(`${signal} received, finishing requests in flight`);
  server.close(() => {
    console.log("stopped");
    process.exit(0);
  });
  if (typeof server.closeIdleConnections === "function") server.closeIdleConnections(); // node >= 18.2
  // Stay well inside the 30 s a dyno gets before SIGKILL.
  setTimeout(() => {
    console.log("requests still open after 5s, exiting anyway");
    process.exit(0);
  }, 5000).unref();
}
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));
