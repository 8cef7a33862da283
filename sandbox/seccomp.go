package main

import (
	"fmt"
	"runtime"
	"syscall"
	"unsafe"
)

// The seccomp filter of --no-fork: process creation fails, thread creation does not.

type sockFilter struct {
	code uint16
	jt   uint8
	jf   uint8
	k    uint32
}

type sockFprog struct {
	len    uint16
	filter *sockFilter
}

const (
	bpfLdWAbs   = 0x20 // BPF_LD | BPF_W | BPF_ABS
	bpfJeqK     = 0x15 // BPF_JMP | BPF_JEQ | BPF_K
	bpfJgeK     = 0x35 // BPF_JMP | BPF_JGE | BPF_K
	bpfJsetK    = 0x45 // BPF_JMP | BPF_JSET | BPF_K
	bpfRetK     = 0x06 // BPF_RET | BPF_K
	retAllow    = 0x7fff0000
	retErrno    = 0x00050000
	cloneThread = 0x00010000

	// struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6].
	offNr   = 0
	offArch = 4
	offArg0 = 16 // low 32 bits on little-endian machines (both arches below are)
)

type archSyscalls struct {
	audit  uint32
	clone  uint32
	clone3 uint32
	forks  []uint32 // fork, vfork where the arch has them
}

func seccompArch() (archSyscalls, bool) {
	switch runtime.GOARCH {
	case "amd64":
		return archSyscalls{audit: 0xc000003e, clone: 56, clone3: 435, forks: []uint32{57, 58}}, true
	case "arm64":
		return archSyscalls{audit: 0xc00000b7, clone: 220, clone3: 435}, true
	}
	return archSyscalls{}, false
}

func stmt(code uint16, k uint32) sockFilter { return sockFilter{code: code, k: k} }
func jump(code uint16, k uint32, jt, jf uint8) sockFilter {
	return sockFilter{code: code, k: k, jt: jt, jf: jf}
}

func noForkFilter(a archSyscalls) []sockFilter {
	eagain := stmt(bpfRetK, retErrno|uint32(syscall.EAGAIN))
	f := []sockFilter{
		stmt(bpfLdWAbs, offArch),
		jump(bpfJeqK, a.audit, 1, 0),
		stmt(bpfRetK, retErrno|uint32(syscall.EPERM)), // another arch's syscall table (x86's int 0x80): refuse
		stmt(bpfLdWAbs, offNr),
		jump(bpfJgeK, 0x40000000, 0, 1), // x32 numbers on x86_64: refuse them all
		stmt(bpfRetK, retErrno|uint32(syscall.EPERM)),
	}
	for _, nr := range a.forks {
		f = append(f, jump(bpfJeqK, nr, 0, 1), eagain)
	}
	f = append(f,
		// clone3's flags are behind a pointer, which a filter cannot read: ENOSYS makes libc use clone.
		jump(bpfJeqK, a.clone3, 0, 1),
		stmt(bpfRetK, retErrno|uint32(syscall.ENOSYS)),
		jump(bpfJeqK, a.clone, 0, 3),
		stmt(bpfLdWAbs, offArg0),
		jump(bpfJsetK, cloneThread, 1, 0),
		eagain,
		stmt(bpfRetK, retAllow),
	)
	return f
}

func noFork() error {
	a, ok := seccompArch()
	if !ok {
		return fmt.Errorf("--no-fork: no seccomp filter for %s", runtime.GOARCH)
	}
	filter := noForkFilter(a)
	prog := sockFprog{len: uint16(len(filter)), filter: &filter[0]}
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRCTL, prSetSeccomp, seccompModeFilter, uintptr(unsafe.Pointer(&prog)), 0, 0, 0); errno != 0 {
		return fmt.Errorf("prctl(PR_SET_SECCOMP): %w", errno)
	}
	return nil
}
