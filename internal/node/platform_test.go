package node

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestParseUname(t *testing.T) {
	for _, tc := range []struct {
		sysname, machine string
		want             Platform
	}{
		{"Linux", "x86_64", Platform{"linux", "amd64"}},
		{"FreeBSD", "amd64", Platform{"freebsd", "amd64"}},
		{"Linux", "aarch64", Platform{"linux", "arm64"}},
		{"Darwin", "arm64", Platform{"darwin", "arm64"}},
		{"Linux", "armv6l", Platform{"linux", "arm"}},
		{"Linux", "armv7l", Platform{"linux", "arm"}},
		// A 64-bit ARM CPU with a 32-bit kernel: runs GOARCH=arm.
		{"Linux", "armv8l", Platform{"linux", "arm"}},
		{"Linux", "i386", Platform{"linux", "386"}},
		{"Linux", "i686", Platform{"linux", "386"}},
		{"Linux", "ppc64le", Platform{"linux", "ppc64le"}},
		{"Linux", "s390x", Platform{"linux", "s390x"}},
		{"Linux", "riscv64", Platform{"linux", "riscv64"}},
		{" Linux\n", "x86_64\n", Platform{"linux", "amd64"}},
	} {
		got, err := ParseUname(tc.sysname, tc.machine)
		if err != nil || got != tc.want {
			t.Errorf("ParseUname(%q, %q) = %v, %v; want %v", tc.sysname, tc.machine, got, err, tc.want)
		}
	}
	// Every machine type the table knows is covered above.
	if len(unameArch) != 12 {
		t.Errorf("unameArch has %d entries; add the new ones to this test", len(unameArch))
	}
	for _, m := range []string{"mips", "sparc64", ""} {
		got, err := ParseUname("Linux", m)
		if err == nil || got.Arch != "" || got.OS != "linux" {
			t.Errorf("ParseUname(Linux, %q) = %v, %v; want an error and an empty Arch", m, got, err)
		}
	}
}

// elfFile writes an ELF header (nothing else) for machine.
func elfFile(t *testing.T, class elf.Class, machine elf.Machine, abi elf.OSABI) string {
	t.Helper()
	var b bytes.Buffer
	ident := [elf.EI_NIDENT]byte{0x7f, 'E', 'L', 'F', byte(class), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT), byte(abi)}
	var err error
	if class == elf.ELFCLASS64 {
		err = binary.Write(&b, binary.LittleEndian, elf.Header64{Ident: ident, Type: uint16(elf.ET_EXEC), Machine: uint16(machine),
			Version: uint32(elf.EV_CURRENT), Ehsize: 64})
	} else {
		err = binary.Write(&b, binary.LittleEndian, elf.Header32{Ident: ident, Type: uint16(elf.ET_EXEC), Machine: uint16(machine),
			Version: uint32(elf.EV_CURRENT), Ehsize: 52})
	}
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(p, b.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBinaryPlatform(t *testing.T) {
	for _, tc := range []struct {
		class   elf.Class
		machine elf.Machine
		abi     elf.OSABI
		want    Platform
	}{
		{elf.ELFCLASS64, elf.EM_X86_64, elf.ELFOSABI_NONE, Platform{"linux", "amd64"}},
		{elf.ELFCLASS64, elf.EM_X86_64, elf.ELFOSABI_FREEBSD, Platform{"freebsd", "amd64"}},
		{elf.ELFCLASS64, elf.EM_AARCH64, elf.ELFOSABI_NONE, Platform{"linux", "arm64"}},
		{elf.ELFCLASS32, elf.EM_ARM, elf.ELFOSABI_NONE, Platform{"linux", "arm"}},
		{elf.ELFCLASS32, elf.EM_386, elf.ELFOSABI_NONE, Platform{"linux", "386"}},
		{elf.ELFCLASS64, elf.EM_PPC64, elf.ELFOSABI_NONE, Platform{"linux", "ppc64le"}},
		{elf.ELFCLASS64, elf.EM_S390, elf.ELFOSABI_NONE, Platform{"linux", "s390x"}},
		{elf.ELFCLASS64, elf.EM_RISCV, elf.ELFOSABI_NONE, Platform{"linux", "riscv64"}},
	} {
		got, ok := BinaryPlatform(elfFile(t, tc.class, tc.machine, tc.abi))
		if !ok || got != tc.want {
			t.Errorf("%v %v: %v, %v; want %v", tc.machine, tc.abi, got, ok, tc.want)
		}
	}
	if got, ok := BinaryPlatform(elfFile(t, elf.ELFCLASS64, elf.EM_MIPS, elf.ELFOSABI_NONE)); ok {
		t.Errorf("MIPS: %v, want not ok", got)
	}
	script := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, ok := BinaryPlatform(script); ok {
		t.Errorf("script: %v, want not ok", got)
	}
	if runtime.GOOS == "linux" {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := BinaryPlatform(exe); !ok || got != (Platform{runtime.GOOS, runtime.GOARCH}) {
			t.Errorf("the test binary: %v, %v", got, ok)
		}
	}
}

func TestCheckBinary(t *testing.T) {
	arm := elfFile(t, elf.ELFCLASS32, elf.EM_ARM, elf.ELFOSABI_NONE)
	armv8l, err := ParseUname("Linux", "armv8l")
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckBinary(arm, armv8l); err != nil {
		t.Errorf("arm binary on armv8l: %v", err)
	}
	x86, _ := ParseUname("Linux", "x86_64")
	if err := CheckBinary(arm, x86); !errors.Is(err, ErrWrongPlatform) {
		t.Errorf("arm binary on x86_64: %v, want ErrWrongPlatform", err)
	}
	unknown, _ := ParseUname("Linux", "mips")
	if err := CheckBinary(arm, unknown); !errors.Is(err, ErrWrongPlatform) {
		t.Errorf("arm binary on an unknown CPU: %v, want ErrWrongPlatform", err)
	}
	script := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CheckBinary(script, x86); err != nil {
		t.Errorf("a file of unknown platform: %v, want nil", err)
	}
}
