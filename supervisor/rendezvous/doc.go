// Package rendezvous is Heroku's "rendezvous" for attached one-off dynos
// (heroku run): how a client that created a dyno with {"attach": true}
// joins its terminal over a TLS socket.
//
// The protocol, as the Heroku CLI speaks it (heroku@11,
// lib/run/dyno.js), in order:
//
//  1. The API answers the dyno's creation with an attach_url,
//     rendezvous://HOST:PORT/SECRET. SECRET is single-use, made of
//     SecretLen lower-case hex digits, and expires if no one attaches.
//  2. The client connects to HOST:PORT with TLS (the certificate must
//     verify: the CLI cannot turn that off) and writes SECRET "\r\n".
//  3. The server writes one handshake line, "rendezvous\r\n", alone.
//     The client discards the whole first chunk of data it receives,
//     whatever it holds, so the server makes sure nothing follows the
//     line before the client has read it (Handshake).
//  4. Then the socket is the dyno's terminal, raw in both directions.
//     With a PTY the bytes go to it unchanged (Ctrl-C included: the
//     PTY's line discipline makes it SIGINT). Without one (the client's
//     --no-tty, force_no_tty in the request) the client sends 0x04 when
//     its stdin ends, which the server turns into end of file.
//  5. The server closes the socket once the dyno has exited and its
//     output has been written; that ends the client. The exit status
//     travels only in the output (heroku run --exit-code appends an
//     echo of $? to the command).
//
// server.go is the server's side of steps 2 to 5, client.go the
// client's, which tests use to stand in for the Heroku CLI, and
// table.go the pending secrets a server hands out.
package rendezvous
