// Command terraform-provider-etcd is the etcd Terraform/OpenTofu provider.
//
// The one binary has these modes:
//
//	terraform-provider-etcd [-debug]                  serve the provider plugin (started by Terraform)
//	terraform-provider-etcd server --config-file F    run one etcd member from an etcd YAML config file
//	terraform-provider-etcd dev [--members N] ...     run a local replicated cluster for trying things out
//	terraform-provider-etcd snapshot save|status|restore  etcdctl/etcdutl snapshot commands
//	terraform-provider-etcd backup run|loop ...       etcd_cluster's scheduled backups, on a node
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/backup"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/devcmd"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/provider"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/server"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/snapshotcmd"
)

// version is set by the release build (goreleaser: -X main.version=...).
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "server":
			return server.Main(args[1:], version, stdout, stderr)
		case "dev":
			return devcmd.Main(args[1:], stdout, stderr)
		case "snapshot":
			return snapshotcmd.Main(args[1:], stdout, stderr)
		case "backup":
			return backup.Main(args[1:], stdout, stderr)
		case "version", "--version", "-version":
			_, _ = fmt.Fprintf(stdout, "terraform-provider-etcd %s\n", version)
			return 0
		}
	}
	return serveProvider(args, stderr)
}

func serveProvider(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("terraform-provider-etcd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	debug := fs.Bool("debug", false, "start the provider with support for debuggers like delve")
	fs.Usage = func() {
		_, _ = fmt.Fprintf(fs.Output(), `Usage:
  terraform-provider-etcd [-debug]                 serve the provider (Terraform starts it)
  terraform-provider-etcd server --config-file F   run one etcd member from an etcd YAML config file
  terraform-provider-etcd dev [--members N] [--tls] [--auth] [--env-file PATH]
                                                   run a local replicated etcd cluster
  terraform-provider-etcd snapshot save|status|restore ...
                                                   take, inspect and restore snapshots (etcdctl/etcdutl)
  terraform-provider-etcd backup run|loop ...      scheduled backups on a node (installed by etcd_cluster)
  terraform-provider-etcd version                  print the version

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		_, _ = fmt.Fprintf(stderr, "unknown command %q\n\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if err := provider.Serve(version, *debug); err != nil {
		log.New(stderr, "", 0).Print(err)
		return 1
	}
	return 0
}
