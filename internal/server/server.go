// Package server runs one etcd member from etcd's own YAML configuration
// file: the `terraform-provider-etcd server --config-file FILE` mode that
// etcd_cluster installs on nodes. The same file works with a stock
// `etcd --config-file FILE`.
//
// Under systemd the member can run as a Type=notify service: it sends
// READY=1 once it has joined the cluster and serves clients. When a new
// cluster bootstraps, a member is ready only once a quorum is up, so
// members must be started concurrently (for example with --no-block).
package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"go.etcd.io/etcd/api/v3/version"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Main runs the server subcommand with args (the arguments after "server")
// and returns the process exit code: 0 after a clean stop on SIGINT or
// SIGTERM, 1 when the member cannot start or fails, 2 for usage errors.
func Main(args []string, providerVersion string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config-file", "", "etcd configuration `file` (YAML, the format of etcd --config-file)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	checkpointOnly := fs.Bool("checkpoint-wal", false, "only checkpoint the stopped member's raft log past entries of etcd 3.5 or older that this etcd cannot decode (as every start does), print what was done, and exit")
	fs.Usage = func() {
		_, _ = fmt.Fprintf(fs.Output(), "Usage: terraform-provider-etcd server --config-file FILE\n\n"+
			"Runs one etcd member configured by an etcd YAML configuration file.\n"+
			"SIGINT or SIGTERM stop it gracefully.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		_, _ = fmt.Fprintf(stderr, "server: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		fs.Usage()
		return 2
	}
	if *showVersion {
		_, _ = fmt.Fprintf(stdout, "terraform-provider-etcd %s (etcd server %s, %s %s/%s)\n",
			providerVersion, version.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	}
	if *configFile == "" {
		_, _ = fmt.Fprintln(stderr, "server: --config-file is required")
		fs.Usage()
		return 2
	}

	if *checkpointOnly {
		cfg, err := LoadConfig(*configFile)
		if err != nil {
			_, _ = fmt.Fprintf(stderr, "server: %v\n", err)
			return 1
		}
		cp, err := checkpointLegacyWAL(zap.NewNop(), cfg.Dir, cfg.WalDir)
		if err != nil {
			_, _ = fmt.Fprintf(stderr, "server: member %q: %v\n", cfg.Name, err)
			return 1
		}
		_, _ = fmt.Fprintln(stdout, CheckpointReport+cp.describe(cfg.Name))
		return 0
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := log.New(stderr, "terraform-provider-etcd server: ", log.LstdFlags)
	if err := Run(ctx, *configFile, logger); err != nil {
		logger.Printf("error: %v", err)
		return 1
	}
	return 0
}

// Run starts the member configured by configFile and serves until ctx is
// done (then it stops gracefully and returns nil) or the member fails.
func Run(ctx context.Context, configFile string, logger *log.Logger) error {
	cfg, err := LoadConfig(configFile)
	if err != nil {
		return err
	}
	if cp, err := checkpointLegacyWAL(zap.NewNop(), cfg.Dir, cfg.WalDir); err != nil {
		logger.Printf("warning: member %q: cannot check the WAL for entries of etcd 3.5 or older (starting etcd anyway): %v", cfg.Name, err)
	} else if cp.Index > 0 {
		logger.Print(cp.describe(cfg.Name))
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("config file %s: cannot start etcd member %q: %w", configFile, cfg.Name, err)
	}
	// embed.Etcd.Close must run exactly once (a second call panics).
	var closeOnce sync.Once
	closeEtcd := func() { closeOnce.Do(e.Close) }
	defer closeEtcd()

	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		return fmt.Errorf("etcd member %q failed before it was ready: %w", cfg.Name, err)
	case <-e.Server.StopNotify():
		return fmt.Errorf("etcd member %q stopped before it was ready", cfg.Name)
	case <-ctx.Done():
		logger.Printf("stop requested before member %q was ready; stopping", cfg.Name)
		closeEtcd()
		return nil
	}

	clientURLs := make([]string, len(cfg.AdvertiseClientUrls))
	for i, u := range cfg.AdvertiseClientUrls {
		clientURLs[i] = u.String()
	}
	logger.Printf("member %q (id %s) is ready; clients: %s", cfg.Name, e.Server.MemberID(), strings.Join(clientURLs, ","))
	notify(logger, "READY=1\nSTATUS=serving clients on "+strings.Join(clientURLs, ","))

	select {
	case <-ctx.Done():
		logger.Printf("stop requested; stopping member %q", cfg.Name)
		notify(logger, "STOPPING=1")
		closeEtcd()
		logger.Printf("member %q stopped", cfg.Name)
		return nil
	case <-e.Server.StopNotify():
		// As etcd does: a member removed from the cluster stops on its own,
		// and that is not a failure to restart from.
		notify(logger, "STOPPING=1")
		logger.Printf("member %q stopped by the cluster (for example removed from it)", cfg.Name)
		return nil
	case err := <-e.Err():
		notify(logger, "STOPPING=1")
		return fmt.Errorf("etcd member %q failed: %w", cfg.Name, err)
	}
}

func notify(logger *log.Logger, state string) {
	if _, err := sdNotify(state); err != nil {
		logger.Printf("warning: cannot notify the service manager: %v", err)
	}
}
