// Command bench times the provider driven by a real Terraform CLI against an
// in-process testserver cluster, and prints a markdown table. `make bench`
// (scripts/bench.sh) builds and runs it.
//
// What it measures, per scenario (N etcd_key resources, and N keys in one
// etcd_key_prefix):
//
//   - wall time of apply (create), plan (refreshes every resource), plan
//     -refresh=false, and destroy, each a separate CLI process as a user
//     runs it; plans are repeated and the median is reported;
//   - the provider's share per resource: (plan − plan -refresh=false) / N,
//     i.e. what refreshing costs, since everything else in the two plans is
//     the same CLI work;
//   - etcd requests per resource per refresh, counted on the server side
//     from etcd's own gRPC metrics (grpc_server_handled_total, all members:
//     they run in this process and share one registry), as the difference
//     between the two plans;
//   - the provider's own time per RPC type (GetProviderSchema,
//     ValidateResourceConfig, UpgradeResourceState, ReadResource,
//     PlanResourceChange, ApplyResourceChange, ...) in each command: the
//     provider appends one line per RPC to a file named by
//     provider.EnvRPCTimings; and the number of provider processes the CLI
//     started for the command;
//   - the start cost of a provider process: `provider version` run a few
//     times with GODEBUG=inittrace=1, its wall time and the time its
//     package initialisers take (the same in a plugin process);
//   - the peak RSS of the provider process: the CLI starts the provider
//     through this binary acting as a wrapper, which runs the real provider
//     as its child and records the child's maximum resident set size
//     (getrusage) when it exits.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/crypto/bcrypt"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/provider"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// Wrapper mode: the CLI runs this binary as the provider.
const (
	envWrapReal  = "ETCD_BENCH_PROVIDER"     // the real provider binary
	envWrapStats = "ETCD_BENCH_RSS_FILE"     // where to append the child's peak RSS (KiB)
	overrideName = "terraform-provider-etcd" // the name dev_overrides looks for
)

func main() {
	if dir := os.Getenv(envProfile); dir != "" {
		os.Exit(serveProfiled(dir))
	}
	if provider := os.Getenv(envWrapReal); provider != "" {
		os.Exit(wrap(provider, os.Getenv(envWrapStats)))
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// wrap runs the real provider with this process's arguments and standard
// streams (the go-plugin handshake goes straight through), forwards
// signals, and records the child's peak RSS.
func wrap(provider, statsFile string) int {
	cmd := exec.Command(provider, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = os.Environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "bench wrapper:", err)
		return 1
	}
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	err := cmd.Wait()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && statsFile != "" {
		if f, ferr := os.OpenFile(statsFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); ferr == nil {
			cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			fmt.Fprintf(f, "%d %d\n", ru.Maxrss, cpu.Microseconds()) // KiB on Linux, µs
			f.Close()
		}
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		return 1
	}
	return 0
}

type options struct {
	cli        string
	sizes      []int
	prefixKeys int
	prefixForm string // "map", "json" or "both"
	users      int
	repeat     int
	members    int
	provider   string
	out        string
	jsonOut    string
	keep       bool
	profileDir string
}

func parseFlags() (options, error) {
	var o options
	var sizes string
	flag.StringVar(&o.cli, "cli", "", "Terraform CLI binary (default: OpenTofu from scripts/install-clis.sh)")
	flag.StringVar(&sizes, "n", "100,1000", "numbers of etcd_key resources, comma-separated")
	flag.IntVar(&o.prefixKeys, "prefix-keys", 1000, "keys in the etcd_key_prefix scenario (0: skip it)")
	flag.StringVar(&o.prefixForm, "prefix-form", "both", "how the etcd_key_prefix scenario gives its values: map (values, built in HCL), json (values_json from a file), or both")
	flag.IntVar(&o.users, "users", 0, "etcd_user resources in the authentication scenario, beside one etcd_role with 1,000 permissions, with authentication enabled (0: skip it)")
	flag.IntVar(&o.repeat, "repeat", 3, "runs of each plan; the median is reported")
	flag.IntVar(&o.members, "members", 3, "members of the testserver cluster")
	flag.StringVar(&o.provider, "provider", "", "provider binary (default: go build the module)")
	flag.StringVar(&o.out, "out", "", "also write the markdown report to this file")
	flag.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file (read by make bench-report)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.StringVar(&o.profileDir, "cpuprofile", "", "serve the provider from this binary and write CPU profiles of it into this directory (timings are then not the real binary's)")
	flag.Parse()
	for _, s := range strings.Split(sizes, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return o, fmt.Errorf("-n: %q is not a positive number", s)
		}
		o.sizes = append(o.sizes, n)
	}
	if o.repeat < 1 {
		return o, errors.New("-repeat must be at least 1")
	}
	if o.users < 0 {
		return o, errors.New("-users must not be negative")
	}
	if !slices.Contains([]string{"map", "json", "both"}, o.prefixForm) {
		return o, fmt.Errorf("-prefix-form: %q is not map, json or both", o.prefixForm)
	}
	return o, nil
}

func run() error {
	o, err := parseFlags()
	if err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if o.cli == "" {
		out, err := exec.Command(filepath.Join(root, "scripts/install-clis.sh")).Output()
		if err != nil {
			return fmt.Errorf("scripts/install-clis.sh: %w", err)
		}
		o.cli = strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
	}

	work, err := os.MkdirTemp("", "etcd-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "bench: work directory", work)
	} else {
		defer os.RemoveAll(work)
	}

	// The provider, and this binary as its wrapper under the name the CLI
	// looks for.
	if o.provider == "" {
		o.provider = filepath.Join(work, "real", overrideName)
		fmt.Fprintln(os.Stderr, "bench: building the provider")
		build := exec.Command("go", "build", "-trimpath", "-o", o.provider, ".")
		build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build: %w", err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	overrides := filepath.Join(work, "override")
	if err := os.MkdirAll(overrides, 0o755); err != nil {
		return err
	}
	if err := os.Symlink(self, filepath.Join(overrides, overrideName)); err != nil {
		return err
	}
	cliConfig := filepath.Join(work, "cli.tfrc")
	if err := os.WriteFile(cliConfig, fmt.Appendf(nil, `provider_installation {
  dev_overrides {
    "registry.terraform.io/terraform-etcd/etcd" = %q
    "registry.opentofu.org/terraform-etcd/etcd" = %q
  }
  direct {}
}
`, overrides, overrides), 0o600); err != nil {
		return err
	}
	versionCmd := exec.Command(o.cli, "version")
	versionCmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+cliConfig, "CHECKPOINT_DISABLE=1")
	versionOut, err := versionCmd.Output()
	if err != nil {
		return fmt.Errorf("%s version: %w", o.cli, err)
	}
	version := filepath.Base(o.cli)
	for _, line := range strings.Split(string(versionOut), "\n") {
		if strings.HasPrefix(line, "OpenTofu v") || strings.HasPrefix(line, "Terraform v") {
			version = line
			break
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	opts := []testserver.Option{testserver.WithMembers(o.members)}
	if o.users > 0 {
		// Each user's password check costs what it costs on a real
		// cluster: etcd's default bcrypt cost, not the testserver's cheap one.
		opts = append(opts, testserver.WithBcryptCost(bcrypt.DefaultCost))
	}
	cluster, err := testserver.New(ctx, opts...)
	cancel()
	if err != nil {
		return fmt.Errorf("start etcd cluster: %w", err)
	}
	defer cluster.Close()

	b := &bench{
		o:        o,
		work:     work,
		cli:      o.cli,
		cluster:  cluster,
		rssFile:  filepath.Join(work, "rss.txt"),
		rpcFile:  filepath.Join(work, "rpc.txt"),
		provider: o.provider,
		env: append(os.Environ(),
			"TF_CLI_CONFIG_FILE="+cliConfig,
			"CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1", "TF_INPUT=0",
			envWrapReal+"="+o.provider,
			envWrapStats+"="+filepath.Join(work, "rss.txt"),
			provider.EnvRPCTimings+"="+filepath.Join(work, "rpc.txt"),
		),
	}
	start, err := measureStart(o.provider)
	if err != nil {
		return err
	}
	if o.profileDir != "" {
		b.env = append(b.env, envProfile+"="+o.profileDir)
	}
	var results []result
	for _, n := range o.sizes {
		r, err := b.scenario(fmt.Sprintf("%d × etcd_key", n), n, keysConfig(cluster.Endpoints(), n), "", nil, false)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	if o.prefixKeys > 0 && o.prefixForm != "json" {
		r, err := b.scenario(fmt.Sprintf("1 × etcd_key_prefix, %d keys in values", o.prefixKeys), 1,
			prefixConfig(cluster.Endpoints(), o.prefixKeys, false), prefixConfig(cluster.Endpoints(), o.prefixKeys, true), nil, false)
		if err != nil {
			return err
		}
		r.keys = o.prefixKeys
		results = append(results, r)
	}
	if o.prefixKeys > 0 && o.prefixForm != "map" {
		r, err := b.scenario(fmt.Sprintf("1 × etcd_key_prefix, %d keys in values_json", o.prefixKeys), 1,
			prefixJSONConfig(cluster.Endpoints(), o.prefixKeys, "values.json"),
			prefixJSONConfig(cluster.Endpoints(), o.prefixKeys, "values-changed.json"),
			map[string]string{"values.json": prefixDoc(o.prefixKeys, false), "values-changed.json": prefixDoc(o.prefixKeys, true)}, false)
		if err != nil {
			return err
		}
		r.keys = o.prefixKeys
		results = append(results, r)
	}

	if o.users > 0 {
		r, err := b.authScenario(o.users)
		if err != nil {
			return err
		}
		results = append(results, r)
	}

	report := renderReport(version, o, results) + renderRPCs(results) + renderStart(start)
	fmt.Print(report)
	if o.jsonOut != "" {
		if err := writeJSON(o.jsonOut, version, o, results); err != nil {
			return err
		}
	}
	if o.out != "" {
		return os.WriteFile(o.out, []byte(report), 0o644)
	}
	return nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run bench inside the module")
	}
	return filepath.Dir(mod), nil
}

func keysConfig(endpoints []string, n int) string {
	return header(endpoints) + fmt.Sprintf(`resource "etcd_key" "k" {
  count = %d
  key   = format("/bench/keys-%d/%%05d", count.index)
  value = "value-${count.index}"
}
`, n, n)
}

// prefixConfig is one etcd_key_prefix of n keys. range() yields at most
// 1,024 values, so the map is merged from chunks of 1,000. changed rewrites
// every 100th value: the 1% change the update step applies.
func prefixConfig(endpoints []string, n int, changed bool) string {
	value := `"value-${i}"`
	if changed {
		value = `i % 100 == 0 ? "changed-${i}" : "value-${i}"`
	}
	return header(endpoints) + fmt.Sprintf(`resource "etcd_key_prefix" "p" {
  prefix = "/bench/prefix-%d/"
  values = merge([for c in range(%d) : { for i in range(c * 1000, min(%d, c * 1000 + 1000)) : format("%%06d", i) => %s }]...)
}
`, n, (n+999)/1000, n, value)
}

// prefixJSONConfig is one etcd_key_prefix of n keys whose values_json is
// read from file, as a user with that many keys keeps them.
func prefixJSONConfig(endpoints []string, n int, file string) string {
	return header(endpoints) + fmt.Sprintf(`resource "etcd_key_prefix" "p" {
  prefix      = "/bench/prefix-json-%d/"
  values_json = file("${path.module}/%s")
}
`, n, file)
}

// prefixDoc is the values_json document of the same keys and values as
// prefixConfig, one member per line as jsonencode's users write files.
func prefixDoc(n int, changed bool) string {
	var b strings.Builder
	b.WriteString("{\n")
	for i := range n {
		v := fmt.Sprintf("value-%d", i)
		if changed && i%100 == 0 {
			v = fmt.Sprintf("changed-%d", i)
		}
		sep := ","
		if i == n-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "  \"%06d\": %q%s\n", i, v, sep)
	}
	b.WriteString("}\n")
	return b.String()
}

func header(endpoints []string) string { return headerAuth(endpoints, "") }

// headerAuth is header with the provider authenticating as root with
// rootPassword ("": no authentication).
func headerAuth(endpoints []string, rootPassword string) string {
	q := make([]string, len(endpoints))
	for i, e := range endpoints {
		q[i] = strconv.Quote(e)
	}
	creds := ""
	if rootPassword != "" {
		creds = fmt.Sprintf("\n  username  = \"root\"\n  password  = %q", rootPassword)
	}
	return fmt.Sprintf(`terraform {
  required_providers {
    etcd = {
      source = "terraform-etcd/etcd"
    }
  }
}

provider "etcd" {
  endpoints = [%s]%s
}

`, strings.Join(q, ", "), creds)
}

type bench struct {
	o        options
	work     string
	cli      string
	provider string
	rssFile  string
	rpcFile  string
	env      []string
	cluster  *testserver.Cluster
	// rootClient, when set, is the client that checks what a scenario
	// left: authentication is on.
	rootClient *clientv3.Client
}

// measurement is one CLI command.
type measurement struct {
	wall     time.Duration
	requests map[string]float64 // etcd gRPC requests by method
	rssKiB   int64              // peak RSS of the provider processes it started
	cpu      time.Duration      // CPU time (user+system) of those processes
	procs    int                // provider processes the CLI started
	rpcs     map[string]rpcStat // the provider's time per RPC type
}

type result struct {
	name                    string
	n                       int // resources
	keys                    int // keys, when not one per resource
	create, destroy         measurement
	plan, planNoRefresh     measurement // medians
	planRuns, noRefreshRuns []time.Duration
	planCPU, noRefreshCPU   time.Duration // medians of the provider's CPU time
	update                  *measurement  // apply of the changed configuration, when there is one
	settle                  *measurement  // apply -refresh-only right after the create, when the scenario asks
	stateBytes              int64         // terraform.tfstate after the apply
}

// peakRSS is the provider's largest peak RSS over the scenario's commands.
func (r result) peakRSS() int64 {
	rss := max(r.create.rssKiB, r.plan.rssKiB, r.planNoRefresh.rssKiB, r.destroy.rssKiB)
	if r.update != nil {
		rss = max(rss, r.update.rssKiB)
	}
	if r.settle != nil {
		rss = max(rss, r.settle.rssKiB)
	}
	return rss
}

// scenario applies config, plans it, applies changed (when not empty) and
// destroys. With settle, an apply -refresh-only after the create saves a
// refresh before the plans are timed, as any later apply would: what a
// refresh records in private state (etcd_user's password checks) then
// counts in the plans.
func (b *bench) scenario(name string, n int, config, changed string, files map[string]string, settle bool) (result, error) {
	r := result{name: name, n: n, keys: n}
	dir := filepath.Join(b.work, strings.NewReplacer(" ", "-", "×", "x", ",", "").Replace(name))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, err
	}
	for f, content := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644); err != nil {
			return r, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(config), 0o644); err != nil {
		return r, err
	}
	fmt.Fprintf(os.Stderr, "bench: %s: apply\n", name)
	var err error
	if r.create, err = b.measure(dir, 0, "apply", "-auto-approve"); err != nil {
		return r, err
	}
	if settle {
		fmt.Fprintf(os.Stderr, "bench: %s: apply -refresh-only\n", name)
		m, err := b.measure(dir, 0, "apply", "-refresh-only", "-auto-approve")
		if err != nil {
			return r, err
		}
		r.settle = &m
	}
	var plans, noRefresh []measurement
	for i := range b.o.repeat {
		fmt.Fprintf(os.Stderr, "bench: %s: plan (%d/%d), plan -refresh=false\n", name, i+1, b.o.repeat)
		m, err := b.measure(dir, 0, "plan", "-detailed-exitcode")
		if err != nil {
			return r, fmt.Errorf("%s: plan after apply: %w", name, err)
		}
		plans = append(plans, m)
		m, err = b.measure(dir, 0, "plan", "-detailed-exitcode", "-refresh=false")
		if err != nil {
			return r, fmt.Errorf("%s: plan -refresh=false after apply: %w", name, err)
		}
		noRefresh = append(noRefresh, m)
	}
	r.plan, r.planRuns = median(plans)
	r.planNoRefresh, r.noRefreshRuns = median(noRefresh)
	r.planCPU, r.noRefreshCPU = medianCPU(plans), medianCPU(noRefresh)
	if st, err := os.Stat(filepath.Join(dir, "terraform.tfstate")); err == nil {
		r.stateBytes = st.Size()
	}
	if changed != "" {
		fmt.Fprintf(os.Stderr, "bench: %s: apply of the changed configuration\n", name)
		if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(changed), 0o644); err != nil {
			return r, err
		}
		m, err := b.measure(dir, 0, "apply", "-auto-approve")
		if err != nil {
			return r, err
		}
		r.update = &m
	}
	fmt.Fprintf(os.Stderr, "bench: %s: destroy\n", name)
	if r.destroy, err = b.measure(dir, 0, "destroy", "-auto-approve"); err != nil {
		return r, err
	}
	// Nothing may be left.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv := b.cluster.Client()
	if b.rootClient != nil {
		kv = b.rootClient
	}
	resp, err := kv.Get(ctx, "/bench/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return r, err
	}
	if resp.Count != 0 {
		return r, fmt.Errorf("%s: %d keys left under /bench/ after destroy", name, resp.Count)
	}
	return r, nil
}

// measure runs one CLI command in dir; wantExit is the exit code that
// means success (plan -detailed-exitcode: 0, no changes).
func (b *bench) measure(dir string, wantExit int, args ...string) (measurement, error) {
	var m measurement
	_ = os.Remove(b.rssFile)
	_ = os.Remove(b.rpcFile)
	before, err := testserver.HandledRequests()
	if err != nil {
		return m, err
	}
	cmd := exec.Command(b.cli, append(args, "-no-color", "-input=false")...)
	cmd.Dir, cmd.Env = dir, b.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	m.wall = time.Since(start)
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		return m, err
	}
	if code != wantExit {
		tail := out.String()
		if len(tail) > 4000 {
			tail = "..." + tail[len(tail)-4000:]
		}
		return m, fmt.Errorf("%s %s exited %d, want %d:\n%s", filepath.Base(b.cli), strings.Join(args, " "), code, wantExit, tail)
	}
	after, err := testserver.HandledRequests()
	if err != nil {
		return m, err
	}
	m.requests = map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			m.requests[k] = d
		}
	}
	if data, err := os.ReadFile(b.rssFile); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var rss, cpu int64
			if _, err := fmt.Sscan(line, &rss, &cpu); err == nil {
				m.rssKiB = max(m.rssKiB, rss)
				m.cpu += time.Duration(cpu) * time.Microsecond
				m.procs++
			}
		}
	}
	if m.rpcs, err = readRPCs(b.rpcFile); err != nil {
		return m, err
	}
	return m, nil
}

func median(ms []measurement) (measurement, []time.Duration) {
	sorted := slices.Clone(ms)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].wall < sorted[j].wall })
	runs := make([]time.Duration, len(ms))
	for i, m := range ms {
		runs[i] = m.wall
	}
	return sorted[len(sorted)/2], runs
}

func medianCPU(ms []measurement) time.Duration {
	cpu := make([]time.Duration, len(ms))
	for i, m := range ms {
		cpu[i] = m.cpu
	}
	slices.Sort(cpu)
	return cpu[len(cpu)/2]
}

func total(reqs map[string]float64) float64 {
	var t float64
	for _, v := range reqs {
		t += v
	}
	return t
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func renderReport(cliVersion string, o options, results []result) string {
	var w bytes.Buffer
	fmt.Fprintf(&w, "### Benchmark: %s, %d-member testserver cluster, plans: median of %d\n\n", cliVersion, o.members, o.repeat)
	fmt.Fprintln(&w, "| scenario | create | plan (refresh) | plan -refresh=false | destroy | provider share / resource (wall, medians) | (wall, fastest runs) | provider CPU / resource / refresh | etcd requests / resource / refresh | provider peak RSS |")
	fmt.Fprintln(&w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		share := (r.plan.wall - r.planNoRefresh.wall) / time.Duration(r.n)
		reqs := (total(r.plan.requests) - total(r.planNoRefresh.requests)) / float64(r.n)
		rss := r.peakRSS()
		fastest := (slices.Min(r.planRuns) - slices.Min(r.noRefreshRuns)) / time.Duration(r.n)
		cpu := (r.planCPU - r.noRefreshCPU) / time.Duration(r.n)
		fmt.Fprintf(&w, "| %s | %s | %s | %s | %s | %.3f ms | %.3f ms | %.3f ms | %.2f | %.1f MiB |\n",
			r.name, secs(r.create.wall), secs(r.plan.wall), secs(r.planNoRefresh.wall), secs(r.destroy.wall),
			float64(share.Microseconds())/1000, float64(fastest.Microseconds())/1000, float64(cpu.Microseconds())/1000,
			reqs, float64(rss)/1024)
	}
	for _, r := range results {
		if r.settle != nil {
			fmt.Fprintf(&w, "\n%s: apply -refresh-only right after the create, before the plans %s (%s; %.0f MiB)\n",
				r.name, secs(r.settle.wall), requestsText(r.settle.requests), float64(r.settle.rssKiB)/1024)
		}
		if r.update != nil {
			fmt.Fprintf(&w, "\n%s: apply of a 1%% change %s (%s; %.0f MiB), state file %.1f MiB\n",
				r.name, secs(r.update.wall), requestsText(r.update.requests), float64(r.update.rssKiB)/1024,
				float64(r.stateBytes)/(1<<20))
		}
	}
	fmt.Fprintln(&w)
	fmt.Fprintln(&w, "Per command: etcd requests (server side, all members) and the provider's peak RSS; every plan run:")
	fmt.Fprintln(&w)
	fmt.Fprintln(&w, "| scenario | create | plan (refresh) | plan -refresh=false | destroy | plan runs | plan -refresh=false runs |")
	fmt.Fprintln(&w, "|---|---|---|---|---|---|---|")
	for _, r := range results {
		fmt.Fprintf(&w, "| %s | %s | %s | %s | %s | %s | %s |\n", r.name,
			commandText(r.create), commandText(r.plan), commandText(r.planNoRefresh),
			commandText(r.destroy), durations(r.planRuns), durations(r.noRefreshRuns))
	}
	fmt.Fprintln(&w)
	fmt.Fprintln(&w, "provider share = (plan − plan -refresh=false) / resources, wall clock, from the medians and "+
		"from the fastest run of each (less sensitive to other load on the machine); provider CPU = the same difference in the provider process's user+system CPU time "+
		"(getrusage), which load does not inflate; etcd requests per refresh = (requests during plan − requests "+
		"during plan -refresh=false) / resources; RSS = peak resident set of the provider process.")
	return w.String()
}

func commandText(m measurement) string {
	return fmt.Sprintf("%s; %.0f MiB", requestsText(m.requests), float64(m.rssKiB)/1024)
}

func requestsText(reqs map[string]float64) string {
	if len(reqs) == 0 {
		return "0"
	}
	keys := make([]string, 0, len(reqs))
	for k := range reqs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %.0f", k, reqs[k])
	}
	return strings.Join(parts, ", ")
}

func durations(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%.2f", d.Seconds())
	}
	return strings.Join(parts, " / ") + " s"
}
