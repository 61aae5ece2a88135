package node

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// Platform is a node's operating system and CPU in Go's terms, to check
// that an uploaded binary can run there.
type Platform struct {
	OS   string // GOOS: "linux", "darwin", "freebsd"
	Arch string // GOARCH: "amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64"
}

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// ErrWrongPlatform: a local binary is built for another OS or CPU than the
// node's.
var ErrWrongPlatform = errors.New("the binary is built for another platform")

// unameArch maps `uname -m` to GOARCH. armv8l is a 64-bit ARM CPU running a
// 32-bit kernel or userland: it runs GOARCH=arm binaries.
var unameArch = map[string]string{
	"x86_64": "amd64", "amd64": "amd64",
	"aarch64": "arm64", "arm64": "arm64",
	"armv7l": "arm", "armv6l": "arm", "armv8l": "arm",
	"i386": "386", "i686": "386",
	"ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
}

// ParseUname turns the output of `uname -s` (sysname) and `uname -m`
// (machine) into a Platform. For a machine type it does not know it returns
// an error and the Platform with an empty Arch.
func ParseUname(sysname, machine string) (Platform, error) {
	machine = strings.TrimSpace(machine)
	p := Platform{OS: strings.ToLower(strings.TrimSpace(sysname)), Arch: unameArch[machine]}
	if p.Arch == "" {
		return p, fmt.Errorf("unknown machine type %q (uname -m)", machine)
	}
	return p, nil
}

// DetectPlatform runs uname on the node.
func DetectPlatform(ctx context.Context, r Runner) (Platform, error) {
	out, err := r.Run(ctx, "uname -s; uname -m")
	if err != nil {
		return Platform{}, err
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		return Platform{}, fmt.Errorf("%s: unexpected uname output %q", r.Target(), out)
	}
	p, err := ParseUname(f[0], f[1])
	if err != nil {
		return p, fmt.Errorf("%s: %w", r.Target(), err)
	}
	return p, nil
}

// elfArch maps an ELF machine to GOARCH.
var elfArch = map[elf.Machine]string{
	elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64", elf.EM_ARM: "arm", elf.EM_386: "386",
	elf.EM_PPC64: "ppc64le", elf.EM_S390: "s390x", elf.EM_RISCV: "riscv64",
}

// BinaryPlatform reads the OS and architecture of a local ELF executable.
// ok is false for files it cannot tell (not ELF, or an unknown machine).
func BinaryPlatform(p string) (Platform, bool) {
	f, err := elf.Open(filepath.Clean(p))
	if err != nil {
		return Platform{}, false
	}
	defer f.Close()
	arch, ok := elfArch[f.Machine]
	if !ok {
		return Platform{}, false
	}
	osName := "linux"
	if f.OSABI == elf.ELFOSABI_FREEBSD {
		osName = "freebsd"
	}
	return Platform{OS: osName, Arch: arch}, true
}

// CheckBinary fails, wrapping ErrWrongPlatform, when the local executable
// is built for another platform than got, the node's (from ParseUname or
// DetectPlatform). A file whose platform BinaryPlatform cannot tell passes.
func CheckBinary(local string, got Platform) error {
	want, ok := BinaryPlatform(local)
	if !ok || got == want {
		return nil
	}
	return fmt.Errorf("%w: the machine is %s but the binary %s is built for %s: set binary_path to a provider build for the machine, or remote_binary to an etcd binary on it",
		ErrWrongPlatform, got, local, want)
}
