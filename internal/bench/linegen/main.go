// Command linegen is the log producer of the throughput benchmark: it
// writes count lines to stdout as fast as it can and exits 0.
//
// Usage:
//
//	linegen COUNT
//
// Line seq (0 ≤ seq < COUNT) is the dyno's name, a space, seq as seven
// digits, a space, and 'x' up to 79 bytes, then '\n': 80 bytes in all.
// Each line is thus fully determined by (name, seq), which lets the
// benchmark check every line of a manager's output byte for byte. The
// name is $DYNO, set by dyno and Heroku, or else $FOREMAN_WORKER_NAME,
// set by node-foreman.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
)

const (
	lineBytes = 80 // with the newline
	seqDigits = 7
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "linegen:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 2 {
		return errors.New("usage: linegen COUNT")
	}
	count, err := strconv.Atoi(os.Args[1])
	if err != nil || count < 0 || count > 9_999_999 {
		return fmt.Errorf("count %q: want 0 to 9999999", os.Args[1])
	}
	name := os.Getenv("DYNO")
	if name == "" {
		name = os.Getenv("FOREMAN_WORKER_NAME")
	}
	if name == "" {
		return errors.New("neither DYNO nor FOREMAN_WORKER_NAME is set")
	}
	// At least one 'x' of padding keeps the shape of a line unambiguous.
	if len(name)+seqDigits+3 > lineBytes-1 {
		return fmt.Errorf("dyno name %q is too long for a %d-byte line", name, lineBytes)
	}

	// One line is built once; only its digits change, so the loop costs a
	// few stores and a copy per line and the manager, not the producer,
	// is what the benchmark measures.
	line := make([]byte, 0, lineBytes)
	line = append(line, name...)
	line = append(line, ' ')
	digits := len(line)
	line = append(line, "0000000 "...)
	for len(line) < lineBytes-1 {
		line = append(line, 'x')
	}
	line = append(line, '\n')

	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	for seq := range count {
		n := seq
		for i := digits + seqDigits - 1; i >= digits; i-- {
			line[i] = byte('0' + n%10)
			n /= 10
		}
		if _, err := w.Write(line); err != nil {
			return fmt.Errorf("write line %d: %w", seq, err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}
