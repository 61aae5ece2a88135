package node

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"
)

// ServiceManager selects how a member runs on its node.
type ServiceManager string

const (
	// ServiceAuto is ServiceSystemd where /run/systemd/system exists (systemd
	// is PID 1), ServiceProcess elsewhere.
	ServiceAuto ServiceManager = "auto"
	// ServiceSystemd installs a unit under /etc/systemd/system.
	ServiceSystemd ServiceManager = "systemd"
	// ServiceProcess runs a supervised background process with a pid file
	// and a log file (containers, test hosts).
	ServiceProcess ServiceManager = "process"
)

// ErrInvalidService is returned for a bad ServiceSpec or manager.
var ErrInvalidService = errors.New("invalid service")

// ServiceSpec describes the long-running process of one member.
type ServiceSpec struct {
	// Name of the service (systemd unit name without ".service"); letters,
	// digits, '-', '_', '.', '@'.
	Name        string
	Description string
	// Command is the argv; Command[0] is an absolute path. For the bundled
	// server: {"/opt/etcd/bin/terraform-provider-etcd", "server",
	// "--config-file", "/opt/etcd/etcd.yaml"}; for stock etcd:
	// {"/usr/bin/etcd", "--config-file", "/opt/etcd/etcd.yaml"}.
	Command []string
	// WorkDir is the working directory (optional).
	WorkDir string
	// Env is extra environment.
	Env map[string]string
	// User runs the service as this user (systemd only; optional).
	User string
	// Notify: the command reports readiness with sd_notify(READY=1), as
	// etcd and the bundled server do; the unit is Type=notify. Otherwise
	// Type=exec.
	Notify bool
	// RunDir holds the supervisor script, pid files and (by default) the
	// log in process mode. Required for ServiceProcess.
	RunDir string
	// LogFile for process mode; RunDir/<Name>.log when empty.
	LogFile string
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL;
	// 30s when zero.
	StopTimeout time.Duration
}

var serviceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]*$`)
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (s ServiceSpec) validate(m ServiceManager) error {
	var errs []string
	if !serviceName.MatchString(s.Name) || len(s.Name) > 200 {
		errs = append(errs, fmt.Sprintf("name %q: use letters, digits, '-', '_', '.', '@'", s.Name))
	}
	if len(s.Command) == 0 || !path.IsAbs(s.Command[0]) {
		errs = append(errs, "command must start with an absolute path")
	}
	for k := range s.Env {
		if !envName.MatchString(k) {
			errs = append(errs, fmt.Sprintf("environment variable name %q is invalid", k))
		}
	}
	if s.WorkDir != "" && !path.IsAbs(s.WorkDir) {
		errs = append(errs, "work dir must be absolute")
	}
	if m == ServiceProcess && (s.RunDir == "" || !path.IsAbs(s.RunDir)) {
		errs = append(errs, "process mode needs an absolute run dir")
	}
	for _, a := range s.Command {
		if strings.ContainsAny(a, "\n\x00") {
			errs = append(errs, "command arguments must not contain newlines or NUL")
			break
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w %q: %s", ErrInvalidService, s.Name, strings.Join(errs, "; "))
	}
	return nil
}

func (s ServiceSpec) stopTimeout() time.Duration {
	if s.StopTimeout <= 0 {
		return 30 * time.Second
	}
	return s.StopTimeout
}

func (s ServiceSpec) sortedEnv() []string {
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ServiceStatus is what Status reports.
type ServiceStatus struct {
	Installed bool
	Running   bool
	// PID of the member process (0 when not running).
	PID int
	// Detail is a one-line state description from the manager, e.g.
	// "active (running)", "supervisor running, member restarting".
	Detail string
}

// Service controls one member's process on its node. Every method is
// idempotent: starting a running service or stopping a stopped one is a
// no-op.
type Service interface {
	Manager() ServiceManager
	// Install writes the unit or supervisor script; changed reports whether
	// anything was (re)written. A running service keeps running the old
	// definition until Restart.
	Install(ctx context.Context) (changed bool, err error)
	// Start starts the service (and, under systemd, enables it at boot)
	// without waiting for the member to become ready: a member of a new
	// cluster only becomes ready once a quorum runs, so readiness is the
	// caller's to wait for.
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Restart(ctx context.Context) error
	Status(ctx context.Context) (ServiceStatus, error)
	// Logs returns the last n lines of the service's log.
	Logs(ctx context.Context, n int) (string, error)
	// Remove stops the service and deletes what Install wrote. Data and
	// logs are kept.
	Remove(ctx context.Context) error
}

// ServiceManagerScript prints the service manager ServiceAuto resolves to
// on the node ("systemd" or "process"), for callers that batch it into a
// session of their own.
const ServiceManagerScript = `if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then echo systemd; else echo process; fi`

// DetectServiceManager resolves ServiceAuto on the node.
func DetectServiceManager(ctx context.Context, r Runner) (ServiceManager, error) {
	out, err := r.Run(ctx, ServiceManagerScript)
	if err != nil {
		return "", err
	}
	return ServiceManager(strings.TrimSpace(out)), nil
}

// NewService returns the Service for spec on the node r, resolving
// ServiceAuto ("" counts as auto) on the node.
func NewService(ctx context.Context, r Runner, m ServiceManager, spec ServiceSpec) (Service, error) {
	switch m {
	case "", ServiceAuto:
		var err error
		if m, err = DetectServiceManager(ctx, r); err != nil {
			return nil, err
		}
	case ServiceSystemd, ServiceProcess:
	default:
		return nil, fmt.Errorf("%w: service_manager %q: must be auto, systemd or process", ErrInvalidService, m)
	}
	if err := spec.validate(m); err != nil {
		return nil, err
	}
	if m == ServiceSystemd {
		return &systemdService{r: r, spec: spec}, nil
	}
	return &processService{r: r, spec: spec}, nil
}

func lastLinesCmd(file string, n int) string {
	return fmt.Sprintf("if [ -f %[1]s ]; then tail -n %[2]d %[1]s; fi", Quote(file), n)
}
