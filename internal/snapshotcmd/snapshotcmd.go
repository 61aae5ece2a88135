// Package snapshotcmd implements `terraform-provider-etcd snapshot
// save|status|restore`, with the arguments and output of `etcdctl snapshot
// save` and `etcdutl snapshot status|restore`, on the internal/snapshot
// package (etcd's own libraries).
//
// save reads the same ETCDCTL_* environment variables as etcdctl (and the
// provider) when a flag is not given.
package snapshotcmd

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
	"go.uber.org/zap/zapcore"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/snapshot"
)

// Exit codes: 1 for a failed command, 2 for bad arguments (as the other
// subcommands of the binary).
const (
	exitError   = 1
	exitBadArgs = 2
)

const usage = `Usage:
  terraform-provider-etcd snapshot save <filename> [--endpoints URL] [--cacert F] [--cert F] [--key F] [--user U[:P]]
  terraform-provider-etcd snapshot status <filename> [-w simple|table|json]
  terraform-provider-etcd snapshot restore <filename> [--data-dir DIR] [--name N] [--initial-cluster C]
        [--initial-cluster-token T] [--initial-advertise-peer-urls URLS] [--skip-hash-check] [--target-version V]

save takes a snapshot of one etcd member through the client API (etcdctl snapshot save);
status and restore work on a snapshot file (etcdutl snapshot status|restore).
Run "terraform-provider-etcd snapshot COMMAND -h" for a command's flags.
`

// Main runs the snapshot subcommand with args (the arguments after
// "snapshot") and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		_, _ = fmt.Fprint(stderr, usage)
		return exitBadArgs
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "save":
		return save(ctx, args[1:], stdout, stderr, os.LookupEnv)
	case "status":
		return status(args[1:], stdout, stderr)
	case "restore":
		return restore(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		_, _ = fmt.Fprint(stdout, usage)
		return 0
	}
	_, _ = fmt.Fprintf(stderr, "snapshot: unknown command %q\n\n%s", args[0], usage)
	return exitBadArgs
}

// parse parses flags wherever they appear among the arguments, as etcdctl
// does (`snapshot save f.db --endpoints X` and `snapshot save --endpoints X
// f.db` are the same), and returns the positional arguments. A lone "--"
// ends the flags.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// oneFile parses args and checks there is exactly one positional argument.
func oneFile(fs *flag.FlagSet, args []string, stderr io.Writer) (string, int) {
	pos, err := parse(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", 0
		}
		return "", exitBadArgs
	}
	if len(pos) != 1 {
		_, _ = fmt.Fprintf(stderr, "snapshot %s: want exactly one file name, got %d arguments\n", fs.Name(), len(pos))
		fs.Usage()
		return "", exitBadArgs
	}
	return pos[0], -1
}

func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		_, _ = fmt.Fprintf(fs.Output(), "Usage: terraform-provider-etcd snapshot %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// logger logs etcdutl's progress to stderr, as etcdutl does.
func logger(stderr io.Writer) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(stderr), zap.InfoLevel)
	return zap.New(core)
}

func fail(stderr io.Writer, cmd string, err error) int {
	_, _ = fmt.Fprintf(stderr, "Error: snapshot %s: %v\n", cmd, err)
	return exitError
}

// flagNames maps the provider attributes client errors name to this
// command's flags.
var flagNames = map[string]string{
	client.AttrEndpoints:             "--endpoints",
	client.AttrUsername:              "--user",
	client.AttrPassword:              "--password",
	client.AttrCACert:                "--cacert",
	client.AttrCert:                  "--cert",
	client.AttrKey:                   "--key",
	client.AttrInsecureSkipTLSVerify: "--insecure-skip-tls-verify",
	client.AttrDialTimeout:           "--dial-timeout",
	client.AttrRequestTimeout:        "--command-timeout",
}

// saveFlags are etcdctl's connection flags.
type saveFlags struct {
	endpoints, cacert, cert, key, user, password string
	insecureSkipVerify                           bool
	dialTimeout, commandTimeout                  time.Duration
}

func save(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	fs := newFlagSet("save", "save <filename> [flags]\n\n"+
		"Takes a snapshot of the one member --endpoints names, through the client API. Flags not given\n"+
		"are read from ETCDCTL_ENDPOINTS, ETCDCTL_CACERT, ETCDCTL_CERT, ETCDCTL_KEY, ETCDCTL_USER,\n"+
		"ETCDCTL_PASSWORD, ETCDCTL_INSECURE_SKIP_TLS_VERIFY, ETCDCTL_DIAL_TIMEOUT and\n"+
		"ETCDCTL_COMMAND_TIMEOUT, as etcdctl does. The file is written to a temporary name, synced and\n"+
		"renamed, so it is complete or absent.", stderr)
	var f saveFlags
	fs.StringVar(&f.endpoints, "endpoints", "", "the member's client URL (default 127.0.0.1:2379; one endpoint only)")
	fs.StringVar(&f.cacert, "cacert", "", "verify the server with this CA bundle (`file`)")
	fs.StringVar(&f.cert, "cert", "", "client certificate `file`")
	fs.StringVar(&f.key, "key", "", "client private key `file`")
	fs.StringVar(&f.user, "user", "", "`username[:password]` to authenticate as")
	fs.StringVar(&f.password, "password", "", "password of --user")
	fs.BoolVar(&f.insecureSkipVerify, "insecure-skip-tls-verify", false, "do not verify the server certificate (testing only)")
	fs.DurationVar(&f.dialTimeout, "dial-timeout", 0, "connection timeout (default 5s)")
	fs.DurationVar(&f.commandTimeout, "command-timeout", 0, "time limit for the whole snapshot (default none)")
	file, code := oneFile(fs, args, stderr)
	if code >= 0 {
		return code
	}

	cfg := client.Config{
		CACert: f.cacert, Cert: f.cert, Key: f.key,
		Username: f.user, Password: f.password,
		DialTimeout: f.dialTimeout, RequestTimeout: f.commandTimeout,
		LookupEnv: lookupEnv,
	}
	if f.endpoints != "" {
		cfg.Endpoints = strings.Split(f.endpoints, ",")
	} else if v, ok := lookupEnv(client.EnvEndpoints); !ok || strings.TrimSpace(v) == "" {
		cfg.Endpoints = []string{"127.0.0.1:2379"}
	}
	if name, pass, found := strings.Cut(f.user, ":"); found && f.password == "" {
		cfg.Username, cfg.Password = name, pass
	}
	if f.insecureSkipVerify {
		cfg.InsecureSkipTLSVerify = &f.insecureSkipVerify
	}
	settings, err := cfg.Resolve()
	if err != nil {
		var ce *client.ConfigError
		if errors.As(err, &ce) {
			named := *ce
			if fl, ok := flagNames[ce.Attribute]; ok {
				named.Attribute = fl
			}
			err = &named
		}
		_, _ = fmt.Fprintf(stderr, "Error: snapshot save: %v\n", err)
		return exitBadArgs
	}
	if len(settings.Endpoints) != 1 {
		_, _ = fmt.Fprintf(stderr, "Error: snapshot save: a snapshot is taken from one member, but %s names %d endpoints (%s)\n",
			sourceFlag(settings.EndpointsSource), len(settings.Endpoints), strings.Join(settings.Endpoints, ","))
		return exitBadArgs
	}
	if err := snapshot.CheckDir(file); err != nil {
		return fail(stderr, "save", err)
	}
	cl, err := client.Open(ctx, settings, snapshot.DialOptions()...)
	if err != nil {
		return fail(stderr, "save", err)
	}
	defer cl.Close()
	// The resolved request timeout (default 10s) bounds authentication;
	// the snapshot stream runs until done unless a command timeout is
	// given, as a large database takes longer than any default.
	sctx := ctx
	if v, ok := lookupEnv(client.EnvCommandTimeout); f.commandTimeout > 0 || (ok && strings.TrimSpace(v) != "") {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(ctx, settings.RequestTimeout)
		defer cancel()
	}
	saved, err := snapshot.Save(sctx, cl.Client, file)
	if err != nil {
		return fail(stderr, "save", cl.Describe(err, "take a snapshot from "+settings.Endpoints[0], ""))
	}
	_, _ = fmt.Fprintf(stdout, "Snapshot saved at %s\n", saved.Path)
	if saved.ServerVersion != "" {
		_, _ = fmt.Fprintf(stdout, "Server version %s\n", saved.ServerVersion)
	}
	return 0
}

func sourceFlag(s client.Source) string {
	if s.Env != "" {
		return s.Env
	}
	return "--endpoints"
}

func status(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("status", "status <filename> [-w simple|table|json]\n\n"+
		"Prints the hash, revision, total keys, total size and storage version of a snapshot file\n"+
		"(etcdutl snapshot status). simple prints them comma-separated.", stderr)
	var out string
	fs.StringVar(&out, "write-out", "simple", "output `format`: simple, table or json")
	fs.StringVar(&out, "w", "simple", "shorthand for --write-out")
	file, code := oneFile(fs, args, stderr)
	if code >= 0 {
		return code
	}
	printStatus, ok := printers[out]
	if !ok {
		_, _ = fmt.Fprintf(stderr, "Error: snapshot status: --write-out %q is not supported: use simple, table or json\n", out)
		return exitBadArgs
	}
	st, err := snapshot.ReadStatus(file)
	if err != nil {
		return fail(stderr, "status", err)
	}
	if err := printStatus(stdout, st); err != nil {
		return fail(stderr, "status", err)
	}
	return 0
}

func restore(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("restore", "restore <filename> [flags]\n\n"+
		"Restores a snapshot into a new data directory for a member of a new cluster (etcdutl snapshot\n"+
		"restore). The snapshot is refused when it comes from an etcd newer than --target-version.", stderr)
	var (
		cfg                       snapshot.RestoreConfig
		cluster, peerURLs, target string
	)
	fs.StringVar(&cfg.OutputDataDir, "data-dir", "", "path of the new data directory, which must not hold data (default NAME.etcd)")
	fs.StringVar(&cfg.OutputWALDir, "wal-dir", "", "path of the WAL directory (default inside --data-dir)")
	fs.StringVar(&cfg.Name, "name", "default", "human-readable name of this member")
	fs.StringVar(&cluster, "initial-cluster", "", "initial cluster configuration, NAME=PEER_URL,... (default NAME=--initial-advertise-peer-urls)")
	fs.StringVar(&cfg.InitialClusterToken, "initial-cluster-token", "etcd-cluster", "initial cluster token of the new cluster")
	fs.StringVar(&peerURLs, "initial-advertise-peer-urls", "http://localhost:2380", "this member's peer URLs, comma-separated")
	fs.BoolVar(&cfg.SkipHashCheck, "skip-hash-check", false, "ignore the snapshot's integrity hash (needed for a db file copied from a data dir)")
	fs.StringVar(&target, "target-version", "", "etcd `version` (e.g. 3.4) that will run the restored member (default the bundled "+snapshot.BundledVersion+")")
	file, code := oneFile(fs, args, stderr)
	if code >= 0 {
		return code
	}
	if target == "" {
		target = snapshot.BundledVersion
	}
	tv, err := snapshot.ParseVersion(target)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "Error: snapshot restore: --target-version: %v\n", err)
		return exitBadArgs
	}
	cfg.SnapshotPath = file
	cfg.PeerURLs = strings.Split(peerURLs, ",")
	if cluster == "" {
		parts := make([]string, len(cfg.PeerURLs))
		for i, u := range cfg.PeerURLs {
			parts[i] = cfg.Name + "=" + u
		}
		cluster = strings.Join(parts, ",")
	}
	cfg.InitialCluster = cluster
	if cfg.OutputDataDir == "" {
		cfg.OutputDataDir = cfg.Name + ".etcd"
	}
	if err := snapshot.Restore(logger(stderr), cfg, tv); err != nil {
		return fail(stderr, "restore", err)
	}
	_, _ = fmt.Fprintf(stdout, "Snapshot %s restored into %s\n", file, cfg.OutputDataDir)
	return 0
}
