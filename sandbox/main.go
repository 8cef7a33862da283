// switchyard-sandbox: the exec wrapper every tool process starts through (src/engine/runtime/sandbox.ts).
//
//	switchyard-sandbox [--read PATH]... [--write PATH]... [--no-network] [--memory BYTES] [--no-fork] -- PROGRAM ARG...
//	switchyard-sandbox --probe
//
// It restricts itself, then execve()s PROGRAM (bun), which inherits every restriction and cannot lift one:
//   - Landlock filesystem rules: only the --read hierarchies (read and execute) and the --write ones (anything
//     beneath) can be opened, plus this process's own /proc/<pid> (read). Everything else, /proc/<engine> and
//     the engine's files included, fails with EACCES.
//   - Landlock network rules (ABI 4+), with --no-network: no TCP bind or connect.
//   - Landlock scopes (ABI 6+): no signal to, and no abstract unix socket of, a process outside this sandbox.
//   - RLIMIT_DATA (--memory): private writable memory; RLIMIT_CORE 0.
//   - --no-fork: a seccomp filter makes fork, vfork and clone without CLONE_THREAD fail with EAGAIN (and clone3
//     with ENOSYS, so that libc falls back to clone): the tool's threads run, no process of its own does.
//   - no_new_privs (required by Landlock and seccomp for an unprivileged process).
//
// Landlock restricts the calling thread only: main runs on the main thread (LockOSThread in init), and that
// thread calls execve, after which the process has no other thread. Go's standard library only, so that the CI
// script and the Docker build stage build it alike; syscall numbers and structures are the kernel's stable ABI.
//
// --probe prints, as one JSON line, what this host lets the wrapper enforce, and exits 0.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"
)

func init() { runtime.LockOSThread() }

const (
	sysLandlockCreateRuleset = 444
	sysLandlockAddRule       = 445
	sysLandlockRestrictSelf  = 446

	landlockCreateRulesetVersion = 1
	rulePathBeneath              = 1
	ruleNetPort                  = 2

	fsExecute    = 1 << 0
	fsWriteFile  = 1 << 1
	fsReadFile   = 1 << 2
	fsReadDir    = 1 << 3
	fsRemoveDir  = 1 << 4
	fsRemoveFile = 1 << 5
	fsMakeChar   = 1 << 6
	fsMakeDir    = 1 << 7
	fsMakeReg    = 1 << 8
	fsMakeSock   = 1 << 9
	fsMakeFifo   = 1 << 10
	fsMakeBlock  = 1 << 11
	fsMakeSym    = 1 << 12
	fsRefer      = 1 << 13 // ABI 2
	fsTruncate   = 1 << 14 // ABI 3
	fsIoctlDev   = 1 << 15 // ABI 5

	netBindTCP    = 1 << 0 // ABI 4
	netConnectTCP = 1 << 1

	scopeAbstractUnixSocket = 1 << 0 // ABI 6
	scopeSignal             = 1 << 1

	oPath = 0x200000 // O_PATH, the same on amd64 and arm64 (the syscall package lacks it)

	prSetNoNewPrivs   = 38
	prSetSeccomp      = 22
	seccompModeFilter = 2
)

type rulesetAttr struct {
	handledAccessFS  uint64
	handledAccessNet uint64
	scoped           uint64
}

// struct landlock_path_beneath_attr is packed: 8 + 4 bytes.
type pathBeneathAttr struct {
	allowedAccess uint64
	parentFd      int32
}

type netPortAttr struct {
	allowedAccess uint64
	port          uint64
}

// Probe is what this host lets the wrapper enforce.
type Probe struct {
	LandlockABI     int    `json:"landlock_abi"`
	LandlockError   string `json:"landlock_error,omitempty"`
	Filesystem      bool   `json:"filesystem"`
	Network         bool   `json:"network"`
	Signals         bool   `json:"signals"`
	AbstractSockets bool   `json:"abstract_unix_sockets"`
	Seccomp         bool   `json:"seccomp"`
	SeccompError    string `json:"seccomp_error,omitempty"`
	Memory          bool   `json:"memory"`
	Arch            string `json:"arch"`
}

func landlockABI() (int, error) {
	r, _, errno := syscall.RawSyscall(sysLandlockCreateRuleset, 0, 0, landlockCreateRulesetVersion)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

func fsRights(abi int) uint64 {
	rights := uint64(fsExecute | fsWriteFile | fsReadFile | fsReadDir | fsRemoveDir | fsRemoveFile | fsMakeChar |
		fsMakeDir | fsMakeReg | fsMakeSock | fsMakeFifo | fsMakeBlock | fsMakeSym)
	if abi >= 2 {
		rights |= fsRefer
	}
	if abi >= 3 {
		rights |= fsTruncate
	}
	if abi >= 5 {
		rights |= fsIoctlDev
	}
	return rights
}

// Rights that apply to a file (not a directory): a rule on a file with any other right is refused (EINVAL).
const fileRights = fsExecute | fsWriteFile | fsReadFile | fsTruncate | fsIoctlDev

func probe() Probe {
	p := Probe{Arch: runtime.GOARCH}
	abi, err := landlockABI()
	if err != nil {
		p.LandlockError = err.Error()
	} else {
		p.LandlockABI = abi
		p.Filesystem = abi >= 1
		p.Network = abi >= 4
		p.Signals = abi >= 6
		p.AbstractSockets = abi >= 6
	}
	_, p.Seccomp = seccompArch()
	if !p.Seccomp {
		p.SeccompError = "no seccomp filter for " + runtime.GOARCH
	}
	var lim syscall.Rlimit
	p.Memory = syscall.Getrlimit(syscall.RLIMIT_DATA, &lim) == nil
	return p
}

type options struct {
	read      []string
	write     []string
	noNetwork bool
	memory    uint64
	noFork    bool
	argv      []string
}

func parse(args []string) (options, error) {
	var o options
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value", a)
			}
			i++
			return args[i], nil
		}
		switch a {
		case "--read", "--write":
			v, err := next()
			if err != nil {
				return o, err
			}
			if !filepath.IsAbs(v) {
				return o, fmt.Errorf("%s %q: not an absolute path", a, v)
			}
			if a == "--read" {
				o.read = append(o.read, v)
			} else {
				o.write = append(o.write, v)
			}
		case "--no-network":
			o.noNetwork = true
		case "--no-fork":
			o.noFork = true
		case "--memory":
			v, err := next()
			if err != nil {
				return o, err
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || n == 0 {
				return o, fmt.Errorf("--memory %q: not a positive number of bytes", v)
			}
			o.memory = n
		case "--":
			o.argv = args[i+1:]
			if len(o.argv) == 0 {
				return o, fmt.Errorf("no program after --")
			}
			return o, nil
		default:
			return o, fmt.Errorf("unknown argument %q", a)
		}
	}
	return o, fmt.Errorf("no -- PROGRAM")
}

func addPathRule(ruleset int, path string, rights uint64) error {
	fd, err := syscall.Open(path, oPath|syscall.O_CLOEXEC, 0)
	if err != nil {
		if err == syscall.ENOENT {
			return nil // not on this host (e.g. /lib64): nothing to allow
		}
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		rights &= fileRights
	}
	attr := pathBeneathAttr{allowedAccess: rights, parentFd: int32(fd)}
	_, _, errno := syscall.RawSyscall6(sysLandlockAddRule, uintptr(ruleset), rulePathBeneath, uintptr(unsafe.Pointer(&attr)), 0, 0, 0)
	if errno != 0 {
		return fmt.Errorf("landlock rule for %s: %w", path, errno)
	}
	return nil
}

func landlock(o options, abi int) error {
	handledFS := fsRights(abi)
	attr := rulesetAttr{handledAccessFS: handledFS}
	size := unsafe.Sizeof(attr)
	switch {
	case abi >= 6:
		attr.scoped = scopeAbstractUnixSocket | scopeSignal
		fallthrough
	case abi >= 4:
		if o.noNetwork {
			attr.handledAccessNet = netBindTCP | netConnectTCP
		}
	}
	if abi < 4 {
		size = 8 // the kernel refuses fields it does not know unless they are zero; older kernels know only the first
	} else if abi < 6 {
		size = 16
	}
	fd, _, errno := syscall.RawSyscall(sysLandlockCreateRuleset, uintptr(unsafe.Pointer(&attr)), size, 0)
	if errno != 0 {
		return fmt.Errorf("landlock_create_ruleset: %w", errno)
	}
	ruleset := int(fd)
	defer syscall.Close(ruleset)
	readRights := uint64(fsExecute | fsReadFile | fsReadDir)
	for _, p := range o.read {
		if err := addPathRule(ruleset, p, readRights); err != nil {
			return err
		}
	}
	for _, p := range o.write {
		if err := addPathRule(ruleset, p, handledFS); err != nil {
			return err
		}
	}
	// Its own /proc/<pid> (what /proc/self names, before and after execve: the pid does not change).
	if err := addPathRule(ruleset, "/proc/"+strconv.Itoa(os.Getpid()), fsReadFile|fsReadDir); err != nil {
		return err
	}
	if _, _, errno := syscall.RawSyscall(sysLandlockRestrictSelf, uintptr(ruleset), 0, 0); errno != 0 {
		return fmt.Errorf("landlock_restrict_self: %w", errno)
	}
	return nil
}

func main() {
	args := os.Args[1:]
	if len(args) == 1 && args[0] == "--probe" {
		out, _ := json.Marshal(probe())
		fmt.Println(string(out))
		return
	}
	o, err := parse(args)
	if err != nil {
		fail("%v", err)
	}
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRCTL, prSetNoNewPrivs, 1, 0, 0, 0, 0); errno != 0 {
		fail("prctl(PR_SET_NO_NEW_PRIVS): %v", errno)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{}); err != nil {
		fail("setrlimit(RLIMIT_CORE): %v", err)
	}
	if o.memory > 0 {
		if err := syscall.Setrlimit(syscall.RLIMIT_DATA, &syscall.Rlimit{Cur: o.memory, Max: o.memory}); err != nil {
			fail("setrlimit(RLIMIT_DATA): %v", err)
		}
	}
	// Landlock is not available everywhere: the engine probes first and only asks for what the host has; a
	// rule the host cannot enforce when asked for is a failure, never a silent run without it.
	if len(o.read) > 0 || len(o.write) > 0 || o.noNetwork {
		abi, err := landlockABI()
		if err != nil {
			fail("landlock is not available: %v", err)
		}
		if o.noNetwork && abi < 4 {
			fail("--no-network needs Landlock ABI 4, this kernel has %d", abi)
		}
		if err := landlock(o, abi); err != nil {
			fail("%v", err)
		}
	}
	if o.noFork {
		if err := noFork(); err != nil {
			fail("%v", err)
		}
	}
	path := o.argv[0]
	if err := syscall.Exec(path, o.argv, os.Environ()); err != nil {
		fail("execve %s: %v", path, err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "switchyard-sandbox: "+format+"\n", args...)
	os.Exit(126)
}
