//go:build linux

package seccomp

import (
	"fmt"
	"math"

	"golang.org/x/sys/unix"
)

// classMask extracts an opcode's class, as BPF_CLASS does
// (include/uapi/linux/bpf_common.h).
const classMask = 0x07

// An assembler builds a classic BPF program (struct sock_filter,
// include/uapi/linux/filter.h) whose conditional jumps name labels
// instead of offsets.
//
// Classic BPF jumps only forward, by an 8-bit count of instructions to
// skip (jt and jf), so a label must come after every jump that names it
// and no more than 255 instructions beyond it. The kernel's checker
// (bpf_check_classic) rejects a program that breaks either rule, and a
// truncated offset would silently jump to the wrong instruction, so
// assemble reports both as errors instead.
type assembler struct {
	insns  []instruction
	labels map[string]int // label -> index of the instruction it marks
	err    error          // first error from label, reported by assemble
}

// An instruction is a sock_filter whose jump targets are still labels.
type instruction struct {
	unix.SockFilter
	jt, jf string // "" continues with the next instruction
}

// label marks the next instruction emitted.
func (a *assembler) label(name string) {
	if a.labels == nil {
		a.labels = make(map[string]int)
	}
	if _, ok := a.labels[name]; ok && a.err == nil {
		a.err = fmt.Errorf("label %q defined twice", name)
	}
	a.labels[name] = len(a.insns)
}

func (a *assembler) emit(code uint16, k uint32, jt, jf string) {
	a.insns = append(a.insns, instruction{SockFilter: unix.SockFilter{Code: code, K: k}, jt: jt, jf: jf})
}

// load loads the 32-bit word at offset off of struct seccomp_data into
// the accumulator. Seccomp allows only aligned absolute word loads from
// that struct (seccomp_check_filter in kernel/seccomp.c).
func (a *assembler) load(off uint32) {
	a.emit(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off, "", "")
}

// jeq jumps to jt if the accumulator equals k, else to jf.
func (a *assembler) jeq(k uint32, jt, jf string) {
	a.emit(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, k, jt, jf)
}

// jge jumps to jt if the accumulator, unsigned, is at least k, else to jf.
func (a *assembler) jge(k uint32, jt, jf string) {
	a.emit(unix.BPF_JMP|unix.BPF_JGE|unix.BPF_K, k, jt, jf)
}

// jset jumps to jt if the accumulator has any bit of k set, else to jf.
func (a *assembler) jset(k uint32, jt, jf string) {
	a.emit(unix.BPF_JMP|unix.BPF_JSET|unix.BPF_K, k, jt, jf)
}

// ret ends the program with the seccomp action k (SECCOMP_RET_*).
func (a *assembler) ret(k uint32) {
	a.emit(unix.BPF_RET|unix.BPF_K, k, "", "")
}

// assemble resolves labels to jump offsets and returns the program.
func (a *assembler) assemble() ([]unix.SockFilter, error) {
	if a.err != nil {
		return nil, a.err
	}
	// BPF_MAXINSNS is the most instructions one classic BPF program may
	// have (bpf_check_basics_ok in net/core/filter.c).
	if len(a.insns) == 0 || len(a.insns) > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("program has %d instructions, want 1 to %d", len(a.insns), unix.BPF_MAXINSNS)
	}
	prog := make([]unix.SockFilter, len(a.insns))
	for i, in := range a.insns {
		f := in.SockFilter
		var err error
		if f.Jt, err = a.offset(i, in.jt); err != nil {
			return nil, err
		}
		if f.Jf, err = a.offset(i, in.jf); err != nil {
			return nil, err
		}
		prog[i] = f
	}
	// Running off the end is not allowed; the checker insists the last
	// instruction returns.
	if last := prog[len(prog)-1]; last.Code&classMask != unix.BPF_RET {
		return nil, fmt.Errorf("program ends in opcode %#x, not a return", last.Code)
	}
	return prog, nil
}

// offset returns the jump offset from instruction from to label.
func (a *assembler) offset(from int, label string) (uint8, error) {
	if label == "" {
		return 0, nil
	}
	to, ok := a.labels[label]
	if !ok {
		return 0, fmt.Errorf("instruction %d: undefined label %q", from, label)
	}
	if to >= len(a.insns) {
		return 0, fmt.Errorf("instruction %d: label %q marks no instruction", from, label)
	}
	d := to - from - 1
	if d < 0 {
		return 0, fmt.Errorf("instruction %d: label %q is behind it; classic BPF jumps only forward", from, label)
	}
	if d > math.MaxUint8 {
		return 0, fmt.Errorf("instruction %d: label %q is %d instructions ahead, more than %d", from, label, d, math.MaxUint8)
	}
	return uint8(d), nil
}
