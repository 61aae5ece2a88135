package memberhost

import (
	"os"
	"path"
	"path/filepath"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/node"
)

// Defaults of a member's directories.
const (
	DefaultInstallDir = "/opt/etcd"
	DefaultDataDir    = "/var/lib/etcd"
	// BinaryName is the file name of the uploaded bundled server.
	BinaryName = "terraform-provider-etcd"
)

// Layout is where a member's files are on its machine (see the package doc).
type Layout struct {
	InstallDir string
	DataDir    string
	Binary     string // the binary the service runs
	// Tool is where the bundled binary goes on the machine: the server
	// itself, or, next to a remote binary, a tool only (snapshot restore
	// and the backup job), never run as the member.
	Tool   string
	Config string // the member's etcd config file
	PKIDir string // certificates, named as in PKIFiles
	RunDir string // pid and log files of the process manager
	// Remote: Binary is an etcd binary already on the machine rather than
	// the uploaded bundled server.
	Remote bool
}

// NewLayout places a member's files. installDir and dataDir default to
// DefaultInstallDir and DefaultDataDir; remoteBinary, when set, is an etcd
// binary on the machine that runs the member instead of the bundled server
// uploaded to <installDir>/bin.
func NewLayout(installDir, dataDir, remoteBinary string) Layout {
	if installDir == "" {
		installDir = DefaultInstallDir
	}
	if dataDir == "" {
		dataDir = DefaultDataDir
	}
	l := Layout{
		InstallDir: installDir,
		DataDir:    dataDir,
		Binary:     remoteBinary,
		Config:     path.Join(installDir, "etc", "etcd.yaml"),
		PKIDir:     path.Join(installDir, "pki"),
		RunDir:     path.Join(installDir, "run"),
		Remote:     remoteBinary != "",
		Tool:       path.Join(installDir, "bin", BinaryName),
	}
	if !l.Remote {
		l.Binary = l.Tool
	}
	return l
}

// Command runs the member from its config file: the bundled server as
// "<bin> server --config-file F", an etcd binary as "<bin> --config-file F".
func (l Layout) Command() []string {
	if l.Remote {
		return []string{l.Binary, "--config-file", l.Config}
	}
	return []string{l.Binary, "server", "--config-file", l.Config}
}

// Service is the member's service (a systemd unit with Type=notify, or a
// supervised process with its files in RunDir).
func (l Layout) Service(name, description string) node.ServiceSpec {
	return node.ServiceSpec{
		Name:        name,
		Description: description,
		Command:     l.Command(),
		WorkDir:     l.InstallDir,
		RunDir:      l.RunDir,
		Notify:      true,
	}
}

// DefaultBinary is the running executable (the provider itself, which is
// also the bundled server), with symbolic links resolved: what is uploaded
// when no binary is configured.
func DefaultBinary() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	return p, nil
}
