// Package devcmd implements `terraform-provider-etcd dev`: a local replicated
// etcd cluster (the testserver package) for trying the provider and the
// recipes by hand or from scripts such as `make demo`.
//
// It prints shell export lines for ETCDCTL_* variables. etcdctl and the
// provider read the same variables, so after `eval` (or sourcing the
// --env-file) both talk to the cluster without further configuration.
package devcmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/shell"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// Options configures the dev cluster.
type Options struct {
	Members int
	TLS     bool
	Auth    bool
	// EnvFile, when set, receives the export lines once the cluster serves;
	// it is removed again when the cluster stops.
	EnvFile string
	// Logger receives the etcd server logs; nil discards them.
	Logger *zap.Logger
}

// startTimeout bounds the cluster start.
const startTimeout = 2 * time.Minute

// Main runs the dev subcommand with args (the arguments after "dev") until
// SIGINT or SIGTERM and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts Options
	fs.IntVar(&opts.Members, "members", 3, fmt.Sprintf("number of members (1 to %d)", testserver.MaxMembers))
	fs.BoolVar(&opts.TLS, "tls", false, "serve over TLS with a throw-away CA and client certificates")
	fs.BoolVar(&opts.Auth, "auth", false, "enable authentication with user root and a random password")
	fs.StringVar(&opts.EnvFile, "env-file", "", "also write the export lines to this `file` (removed on exit)")
	verbose := fs.Bool("verbose", false, "log the etcd servers' output to stderr")
	fs.Usage = func() {
		_, _ = fmt.Fprintf(fs.Output(), "Usage: terraform-provider-etcd dev [--members N] [--tls] [--auth] [--env-file PATH]\n\n"+
			"Starts a local replicated etcd cluster on 127.0.0.1 and runs it until\n"+
			"SIGINT or SIGTERM. Its data is discarded on exit.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		_, _ = fmt.Fprintf(stderr, "dev: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		fs.Usage()
		return 2
	}
	if opts.Members < 1 || opts.Members > testserver.MaxMembers {
		_, _ = fmt.Fprintf(stderr, "dev: --members must be between 1 and %d, got %d\n", testserver.MaxMembers, opts.Members)
		return 2
	}
	if *verbose {
		logger, err := zap.NewDevelopment()
		if err != nil {
			_, _ = fmt.Fprintf(stderr, "dev: %v\n", err)
			return 1
		}
		opts.Logger = logger
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, opts, stdout); err != nil {
		_, _ = fmt.Fprintf(stderr, "dev: %v\n", err)
		return 1
	}
	return 0
}

// Run starts the cluster, prints how to reach it to out, and keeps it
// running until ctx is done; then it stops the cluster and removes its data.
func Run(ctx context.Context, opts Options, out io.Writer) (err error) {
	tsOpts := []testserver.Option{testserver.WithMembers(opts.Members)}
	if opts.TLS {
		tsOpts = append(tsOpts, testserver.WithTLS())
	}
	if opts.Auth {
		tsOpts = append(tsOpts, testserver.WithAuth())
	}
	if opts.Logger != nil {
		tsOpts = append(tsOpts, testserver.WithLogger(opts.Logger))
	}

	startCtx, cancel := context.WithTimeout(ctx, startTimeout)
	c, err := testserver.New(startCtx, tsOpts...)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while starting
		}
		return fmt.Errorf("starting a %d-member cluster: %w", opts.Members, err)
	}
	defer func() {
		if cerr := c.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("stopping the cluster: %w", cerr)
		}
	}()

	// The env file comes last: a script that waits for it can rely on the
	// summary being printed already.
	env := Env(c)
	printSummary(out, c, opts, env)
	if opts.EnvFile != "" {
		if err := writeEnvFile(opts.EnvFile, env); err != nil {
			return err
		}
		defer func() { _ = os.Remove(opts.EnvFile) }()
	}

	<-ctx.Done()
	_, _ = fmt.Fprintln(out, "stopping the cluster")
	return nil
}

// Var is one environment variable for etcdctl and the provider.
type Var struct{ Name, Value string }

// Env returns the ETCDCTL_* variables that point etcdctl and the provider
// at c.
func Env(c *testserver.Cluster) []Var {
	env := []Var{{"ETCDCTL_ENDPOINTS", strings.Join(c.Endpoints(), ",")}}
	if t := c.TLS(); t != nil {
		env = append(env,
			Var{"ETCDCTL_CACERT", t.CAFile},
			Var{"ETCDCTL_CERT", t.CertFile},
			Var{"ETCDCTL_KEY", t.KeyFile},
		)
	}
	if user, pass := c.RootCredentials(); user != "" {
		env = append(env, Var{"ETCDCTL_USER", user + ":" + pass})
	}
	return env
}

// ExportLines renders env as POSIX shell export statements.
func ExportLines(env []Var) string {
	var b strings.Builder
	for _, v := range env {
		fmt.Fprintf(&b, "export %s=%s\n", v.Name, shell.Quote(v.Value))
	}
	return b.String()
}

// writeEnvFile writes the export lines atomically, so that a script waiting
// for the file never reads half of it. It may hold a password: mode 0600.
func writeEnvFile(path string, env []Var) error {
	tmp := path + ".tmp"
	content := "# etcd dev cluster: source this file to use it with etcdctl and the etcd provider\n" + ExportLines(env)
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return fmt.Errorf("writing env file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing env file: %w", err)
	}
	return nil
}

func printSummary(out io.Writer, c *testserver.Cluster, opts Options, env []Var) {
	yesNo := map[bool]string{true: "on", false: "off"}
	members := c.Members()
	_, _ = fmt.Fprintf(out, "etcd dev cluster is up: %d member(s), TLS %s, auth %s\n\n",
		len(members), yesNo[opts.TLS], yesNo[opts.Auth])
	for _, m := range members {
		_, _ = fmt.Fprintf(out, "  %-4s id %x  client %s  peer %s\n",
			m.Name, m.ID, strings.Join(m.ClientURLs, ","), strings.Join(m.PeerURLs, ","))
	}
	_, _ = fmt.Fprintf(out, "\nendpoints: %s\n", strings.Join(c.Endpoints(), ","))
	_, _ = fmt.Fprintf(out, "\n# etcdctl and the etcd provider read these variables:\n%s", ExportLines(env))
	if opts.EnvFile != "" {
		_, _ = fmt.Fprintf(out, "# (also written to %s)\n", opts.EnvFile)
	}
	_, _ = fmt.Fprintln(out, "\nPress Ctrl-C to stop; all data is discarded.")
}
