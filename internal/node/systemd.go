package node

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// UnitDir is where units are installed.
const UnitDir = "/etc/systemd/system"

// RenderSystemdUnit returns the unit file for spec.
//
// Type=notify when spec.Notify: etcd (and the bundled server) send READY=1
// once the member has joined the cluster and serves clients, so "active"
// means ready. That can take as long as it takes a quorum to come up, hence
// TimeoutStartSec=infinity; the provider bounds its own wait instead, and
// starts units with --no-block.
func RenderSystemdUnit(spec ServiceSpec) ([]byte, error) {
	if err := spec.validate(ServiceSystemd); err != nil {
		return nil, err
	}
	desc := spec.Description
	if desc == "" {
		desc = "etcd member " + spec.Name
	}
	typ := "exec"
	if spec.Notify {
		typ = "notify"
	}
	var b strings.Builder
	line := func(k, v string) { fmt.Fprintf(&b, "%s=%s\n", k, v) }
	b.WriteString("# Written by terraform-provider-etcd; changes are overwritten on apply.\n")
	b.WriteString("[Unit]\n")
	line("Description", strings.ReplaceAll(desc, "\n", " "))
	line("Documentation", "https://etcd.io/docs/")
	line("Wants", "network-online.target")
	line("After", "network-online.target")
	b.WriteString("\n[Service]\n")
	line("Type", typ)
	if spec.Notify {
		line("NotifyAccess", "main")
	}
	args := make([]string, len(spec.Command))
	for i, a := range spec.Command {
		args[i] = systemdQuote(a)
	}
	line("ExecStart", strings.Join(args, " "))
	if spec.WorkDir != "" {
		// A path setting: not quoted, only specifiers escaped.
		line("WorkingDirectory", strings.ReplaceAll(spec.WorkDir, "%", "%%"))
	}
	for _, k := range spec.sortedEnv() {
		line("Environment", systemdQuote(k+"="+spec.Env[k]))
	}
	if spec.User != "" {
		line("User", spec.User)
	}
	line("Restart", "on-failure")
	line("RestartSec", "5s")
	line("TimeoutStartSec", "infinity")
	line("TimeoutStopSec", strconv.Itoa(int(spec.stopTimeout().Seconds()))+"s")
	line("LimitNOFILE", "65536")
	b.WriteString("\n[Install]\n")
	line("WantedBy", "multi-user.target")
	return []byte(b.String()), nil
}

// systemdQuote quotes one word for ExecStart/Environment: double quotes,
// backslash escapes, and specifiers (%) and variables ($) neutralized.
func systemdQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`, `$`, `$$`)
	return `"` + r.Replace(s) + `"`
}

type systemdService struct {
	r    Runner
	spec ServiceSpec
}

func (s *systemdService) Manager() ServiceManager { return ServiceSystemd }

func (s *systemdService) unit() string     { return s.spec.Name + ".service" }
func (s *systemdService) unitPath() string { return UnitDir + "/" + s.unit() }

func (s *systemdService) Install(ctx context.Context) (bool, error) {
	data, err := RenderSystemdUnit(s.spec)
	if err != nil {
		return false, err
	}
	changed, err := s.r.Upload(ctx, s.unitPath(), data, 0o644)
	if err != nil || !changed {
		return changed, err
	}
	_, err = s.r.Run(ctx, "systemctl daemon-reload")
	return true, err
}

func (s *systemdService) Start(ctx context.Context) error {
	u := Quote(s.unit())
	_, err := s.r.Run(ctx, fmt.Sprintf("systemctl enable %[1]s && systemctl start --no-block %[1]s", u))
	return err
}

func (s *systemdService) Stop(ctx context.Context) error {
	_, err := s.r.Run(ctx, fmt.Sprintf("if [ -f %s ]; then systemctl stop %s; fi", Quote(s.unitPath()), Quote(s.unit())))
	return err
}

func (s *systemdService) Restart(ctx context.Context) error {
	_, err := s.r.Run(ctx, "systemctl restart --no-block "+Quote(s.unit()))
	return err
}

func (s *systemdService) Status(ctx context.Context) (ServiceStatus, error) {
	out, err := s.r.Run(ctx, "systemctl show --no-pager -p LoadState -p ActiveState -p SubState -p MainPID "+Quote(s.unit()))
	if err != nil {
		return ServiceStatus{}, err
	}
	return parseSystemdShow(out), nil
}

func parseSystemdShow(out string) ServiceStatus {
	props := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok {
			props[k] = v
		}
	}
	st := ServiceStatus{
		Installed: props["LoadState"] == "loaded",
		Detail:    fmt.Sprintf("%s (%s)", props["ActiveState"], props["SubState"]),
	}
	st.PID, _ = strconv.Atoi(props["MainPID"])
	// "activating" is a notify unit that has not sent READY=1 yet: the
	// process runs.
	st.Running = st.PID > 0 && (props["ActiveState"] == "active" || props["ActiveState"] == "activating" || props["ActiveState"] == "reloading")
	if !st.Running {
		st.PID = 0
	}
	return st
}

func (s *systemdService) Logs(ctx context.Context, n int) (string, error) {
	return s.r.Run(ctx, fmt.Sprintf("journalctl --no-pager -o cat -n %d -u %s", n, Quote(s.unit())))
}

func (s *systemdService) Remove(ctx context.Context) error {
	_, err := s.r.Run(ctx, fmt.Sprintf(`if [ -f %[1]s ]; then systemctl disable --now %[2]s; rm -f %[1]s; systemctl daemon-reload; systemctl reset-failed %[2]s 2>/dev/null || true; fi`,
		Quote(s.unitPath()), Quote(s.unit())))
	return err
}
