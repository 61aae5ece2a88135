// Package membertest starts a single embedded etcd member that joins a
// running cluster, for tests of member add and promote: testserver starts
// whole clusters, this is the process an operator would start on a new node
// after `etcdctl member add`.
package membertest

import (
	"fmt"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/etcdconf"
)

// FreeURL returns an http URL on a free 127.0.0.1 port. The port is free
// when FreeURL returns; a test that races other processes for ports may
// rarely lose it.
func FreeURL(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

// Joiner is one embedded member started with initial-cluster-state
// "existing".
type Joiner struct {
	Name      string
	PeerURL   string
	ClientURL string
	Etcd      *embed.Etcd
	stop      sync.Once
}

// Stop stops the member (once; the test's cleanup calls it too).
func (j *Joiner) Stop() { j.stop.Do(j.Etcd.Close) }

// Join starts a member named name with the given URLs, an empty data dir and
// initial cluster, the same test tuning as testserver (10ms heartbeat, no
// fsync). It does not wait for the member to be ready; Ready does. The member
// is stopped when the test ends.
func Join(tb testing.TB, name, peerURL, clientURL string, initial []etcdconf.Member) *Joiner {
	tb.Helper()
	pu, err := url.Parse(peerURL)
	if err != nil {
		tb.Fatal(err)
	}
	cu, err := url.Parse(clientURL)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := embed.NewConfig()
	cfg.Name = name
	cfg.Dir = tb.TempDir()
	cfg.ListenPeerUrls = []url.URL{*pu}
	cfg.AdvertisePeerUrls = []url.URL{*pu}
	cfg.ListenClientUrls = []url.URL{*cu}
	cfg.AdvertiseClientUrls = []url.URL{*cu}
	cfg.InitialCluster = etcdconf.InitialClusterString(initial)
	cfg.ClusterState = embed.ClusterStateFlagExisting
	cfg.TickMs = 10
	cfg.ElectionMs = 100
	cfg.UnsafeNoFsync = true
	cfg.EnableGRPCGateway = false
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		tb.Fatalf("start joining member %s: %v", name, err)
	}
	j := &Joiner{Name: name, PeerURL: peerURL, ClientURL: clientURL, Etcd: e}
	tb.Cleanup(j.Stop)
	return j
}

// Ready waits until the member serves clients (it has joined the cluster
// and caught up enough to publish itself).
func (j *Joiner) Ready(d time.Duration) error {
	select {
	case <-j.Etcd.Server.ReadyNotify():
		return nil
	case err := <-j.Etcd.Err():
		return fmt.Errorf("member %s failed: %w", j.Name, err)
	case <-time.After(d):
		return fmt.Errorf("member %s not ready within %s", j.Name, d)
	}
}
