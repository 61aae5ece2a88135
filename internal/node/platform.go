package node

import (
	"context"
	"fmt"
	"strings"
)

// Platform is a node's operating system and CPU in Go's terms, to check
// that an uploaded binary can run there.
type Platform struct {
	OS   string // GOOS: "linux", "darwin", "freebsd"
	Arch string // GOARCH: "amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64"
}

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// unameArch maps `uname -m` to GOARCH.
var unameArch = map[string]string{
	"x86_64": "amd64", "amd64": "amd64",
	"aarch64": "arm64", "arm64": "arm64",
	"armv7l": "arm", "armv6l": "arm", "armv8l": "arm",
	"i386": "386", "i686": "386",
	"ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
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
	p := Platform{OS: strings.ToLower(f[0]), Arch: unameArch[f[1]]}
	if p.Arch == "" {
		return p, fmt.Errorf("%s: unknown machine type %q", r.Target(), f[1])
	}
	return p, nil
}
