// A tiny web app for dyno: answers on $PORT with the dyno's name and how
// long it has been up, and stops cleanly on SIGTERM, which is how a dyno
// is asked to stop.
"use strict";

const http = require("http");
const ms = require("ms"); // one small dependency, to prove npm installs work

const port = Number(process.env.PORT) || 5000;
const dyno = process.env.DYNO || "(not in a dyno)";
const started = Date.now();

const server = http.createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "Content-Type": "text/plain" });
    res.end("ok\n");
    return;
  }
  const uptime = ms(Date.now() - started, { long: true });
  res.writeHead(200, { "Content-Type": "text/plain" });
  res.end(`Hello from ${dyno}\nnode ${process.version}, up ${uptime}\n`);
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
