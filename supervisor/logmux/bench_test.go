package logmux

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	benchSources   = 4
	benchLineBytes = 80 // including the newline
)

// TestMain lets the test binary double as a dyno for
// BenchmarkMuxProcesses: with childLinesEnv set it writes that many lines
// to stdout and exits.
func TestMain(m *testing.M) {
	if n := os.Getenv(childLinesEnv); n != "" {
		if err := benchChild(n, os.Getenv(childWriteEnv)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const (
	childLinesEnv = "LOGMUX_BENCH_CHILD_LINES"
	childWriteEnv = "LOGMUX_BENCH_CHILD_WRITE" // "line": one write per line
)

func benchChild(lines, mode string) error {
	n, err := strconv.Atoi(lines)
	if err != nil {
		return err
	}
	line := benchLine()
	var w io.Writer = os.Stdout
	if mode != "line" {
		// Like C stdio, which buffers a pipe in 4 KiB blocks.
		bw := bufio.NewWriterSize(os.Stdout, 4096)
		defer bw.Flush()
		w = bw
	}
	for range n {
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	return nil
}

func benchLine() []byte {
	return append(bytes.Repeat([]byte("0123456789abcdef"), benchLineBytes/16)[:benchLineBytes-1], '\n')
}

// BenchmarkMux measures the mux alone: goroutines stand in for the dynos
// and write 80-byte lines into 4 sources; an op is one line.
func BenchmarkMux(b *testing.B) {
	formats := []struct {
		name string
		opts Options
	}{
		{"terminal", Options{Format: FormatTerminal, Timestamp: true, Color: true, Types: []string{"web"}}},
		{"logplex", Options{Format: FormatLogplex}},
	}
	writes := []struct {
		name  string
		lines int // per write
	}{
		{"write=line", 1},
		{"write=4KiB", 4096 / benchLineBytes},
	}
	for _, f := range formats {
		for _, w := range writes {
			b.Run(f.name+"/"+w.name, func(b *testing.B) {
				benchMux(b, f.opts, w.lines)
			})
		}
	}
}

func benchMux(b *testing.B, opts Options, linesPerWrite int) {
	m := New(io.Discard, opts)
	block := bytes.Repeat(benchLine(), linesPerWrite)
	perSource := (b.N + benchSources - 1) / benchSources
	var srcs []*Source
	for i := range benchSources {
		s, err := m.Source(fmt.Sprintf("web.%d", i+1))
		if err != nil {
			b.Fatal(err)
		}
		srcs = append(srcs, s)
	}
	b.SetBytes(benchLineBytes)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for _, s := range srcs {
		wg.Go(func() {
			w := s.Writer()
			for left := perSource; left > 0; left -= linesPerWrite {
				p := block
				if left < linesPerWrite {
					p = block[:left*benchLineBytes]
				}
				if _, err := w.Write(p); err != nil {
					b.Error(err)
					break
				}
			}
			s.CloseWriter()
		})
	}
	wg.Wait()
	for _, s := range srcs {
		<-s.Done()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	total := float64(perSource * benchSources)
	b.ReportMetric(float64(elapsed.Nanoseconds())/total, "ns/line")
}

// BenchmarkMuxProcesses is the end-to-end case the mux is sized for: 4
// child processes each write 200,000 lines of 80 bytes as fast as they
// can. It reports throughput and the supervisor's own CPU time per line
// (user+system of this process, not of the children).
func BenchmarkMuxProcesses(b *testing.B) {
	for _, mode := range []string{"4KiB", "line"} {
		for _, output := range []string{"discard", "file"} {
			b.Run("write="+mode+"/output="+output, func(b *testing.B) {
				benchProcesses(b, mode, output)
			})
		}
	}
}

func benchProcesses(b *testing.B, mode, output string) {
	const lines = 200000
	exe, err := os.Executable()
	if err != nil {
		b.Skip(err)
	}
	var w io.Writer = io.Discard
	if output == "file" {
		f, err := os.Create(b.TempDir() + "/out.log")
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		w = f
	}
	m := New(w, Options{Format: FormatLogplex})

	var cpu time.Duration
	var wall time.Duration
	b.ResetTimer()
	for range b.N {
		var cmds []*exec.Cmd
		var srcs []*Source
		for i := range benchSources {
			s, err := m.Source(fmt.Sprintf("web.%d", i+1))
			if err != nil {
				b.Fatal(err)
			}
			cmd := exec.Command(exe)
			cmd.Env = append(os.Environ(), childLinesEnv+"="+strconv.Itoa(lines), childWriteEnv+"="+mode)
			cmd.Stdout = s.Writer()
			cmd.Stderr = s.Writer()
			cmds = append(cmds, cmd)
			srcs = append(srcs, s)
		}
		cpu0 := cpuTime()
		start := time.Now()
		for i, cmd := range cmds {
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			srcs[i].CloseWriter()
		}
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				b.Fatal(err)
			}
			<-srcs[i].Done()
		}
		wall += time.Since(start)
		cpu += cpuTime() - cpu0
	}
	b.StopTimer()
	total := float64(b.N * benchSources * lines)
	b.ReportMetric(total/wall.Seconds(), "lines/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/total, "cpu-ns/line")
	if err := m.Err(); err != nil {
		b.Fatal(err)
	}
}

// cpuTime returns the user and system time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
