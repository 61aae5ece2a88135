package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/etcdconf"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/pki"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver/sshhost"
)

const stockEtcd = "/usr/bin/etcd"

// TestClusterOverSSH walks the path etcd_cluster will take, with Debian's
// stock etcd as the binary: upload binary, certificates and a rendered
// config to three SSH hosts in parallel, start each member as a supervised
// process, check the cluster with clientv3 over TLS (3 members, one leader),
// re-run the steps idempotently, join a fourth host as a learner with
// initial-cluster-state "existing" and promote it, then stop everything.
func TestClusterOverSSH(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	if _, err := os.Stat(stockEtcd); err != nil {
		t.Skipf("%s not installed (apt-get install etcd-server): %v", stockEtcd, err)
	}
	hosts := sshhost.Start(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	begin := time.Now()

	ca, err := pki.NewCA(pki.CAOptions{CommonName: "node-test-ca"})
	if err != nil {
		t.Fatal(err)
	}
	clientCert, err := ca.IssueClient("root", pki.Window{})
	if err != nil {
		t.Fatal(err)
	}

	type member struct {
		h       *sshhost.Host
		c       *Client
		name    string
		install string
		peerURL string
		client  string
		certs   *pki.MemberCerts
		svc     Service
	}
	var members, all []*member
	var initial []etcdconf.Member
	for i, h := range hosts {
		m := &member{
			h:       h,
			name:    fmt.Sprintf("m%d", i+1),
			install: path.Join(h.BaseDir, "opt", "etcd"),
			peerURL: fmt.Sprintf("https://%s:2380", h.Addr),
			client:  fmt.Sprintf("https://%s:2379", h.Addr),
		}
		certHosts := []string{h.Addr}
		if h.Mode == sshhost.ModeLoopback {
			// Hosts share the loopback interface: peers connect from
			// 127.0.0.1, and etcd checks a peer's source address against
			// its certificate.
			certHosts = append(certHosts, "127.0.0.1")
		}
		if m.certs, err = ca.IssueMember(pki.MemberRequest{Name: m.name, Hosts: certHosts}); err != nil {
			t.Fatal(err)
		}
		m.c = mustDial(t, sshConfig(h))
		all = append(all, m)
		if i < 3 {
			members = append(members, m)
			initial = append(initial, etcdconf.Member{Name: m.name, PeerURLs: []string{m.peerURL}})
		}
	}
	joiner := all[3]

	// Make sure nothing is left running whatever happens below.
	t.Cleanup(func() {
		for _, m := range all {
			if m.svc != nil {
				cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
				_ = m.svc.Stop(cctx)
				ccancel()
			}
		}
	})

	parallel := func(step string, f func(m *member) error) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, len(members))
		for i, m := range members {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = f(m)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("%s on %s (%s): %v", step, members[i].name, members[i].h.Addr, err)
			}
		}
	}

	setup := func(m *member, initial []etcdconf.Member, state string) error {
		bin := path.Join(m.install, "bin", "etcd")
		if _, err := m.c.UploadFile(ctx, stockEtcd, bin, 0o755); err != nil {
			return err
		}
		pkiDir := path.Join(m.install, "pki")
		files := map[string][]byte{
			"ca.pem": ca.CertPEM, "server.pem": m.certs.Server.CertPEM, "server-key.pem": m.certs.Server.KeyPEM,
			"peer.pem": m.certs.Peer.CertPEM, "peer-key.pem": m.certs.Peer.KeyPEM,
		}
		for name, data := range files {
			if _, err := m.c.Upload(ctx, path.Join(pkiDir, name), data, 0o600); err != nil {
				return err
			}
		}
		cfg, err := etcdconf.Render(etcdconf.Config{
			Name:                m.name,
			DataDir:             path.Join(m.install, "data"),
			ListenPeerURLs:      []string{m.peerURL},
			AdvertisePeerURLs:   []string{m.peerURL},
			ListenClientURLs:    []string{m.client},
			AdvertiseClientURLs: []string{m.client},
			InitialCluster:      initial,
			InitialClusterState: state,
			InitialClusterToken: "node-test",
			ClientTLS:           &etcdconf.TLS{CertFile: path.Join(pkiDir, "server.pem"), KeyFile: path.Join(pkiDir, "server-key.pem"), TrustedCAFile: path.Join(pkiDir, "ca.pem"), ClientCertAuth: true},
			PeerTLS:             &etcdconf.TLS{CertFile: path.Join(pkiDir, "peer.pem"), KeyFile: path.Join(pkiDir, "peer-key.pem"), TrustedCAFile: path.Join(pkiDir, "ca.pem"), ClientCertAuth: true},
			Settings:            map[string]string{"snapshot-count": "10000", "heartbeat-interval": "100", "election-timeout": "1000"},
		})
		if err != nil {
			return err
		}
		confPath := path.Join(m.install, "etc", "etcd.yaml")
		if _, err := m.c.Upload(ctx, confPath, cfg, 0o644); err != nil {
			return err
		}
		m.svc, err = NewService(ctx, m.c, ServiceAuto, ServiceSpec{
			Name:    "etcd-" + m.name,
			Command: []string{bin, "--config-file", confPath},
			WorkDir: m.install,
			RunDir:  path.Join(m.install, "run"),
			Notify:  true,
		})
		if err != nil {
			return err
		}
		_, err = m.svc.Install(ctx)
		return err
	}
	parallel("upload", func(m *member) error { return setup(m, initial, etcdconf.StateNew) })
	t.Logf("uploaded to 3 hosts in %s (manager %s)", time.Since(begin), members[0].svc.Manager())

	parallel("start", func(m *member) error { return m.svc.Start(ctx) })

	tlsCfg, err := transport.TLSInfo{
		CertFile:      writeTemp(t, "client.pem", clientCert.CertPEM),
		KeyFile:       writeTemp(t, "client-key.pem", clientCert.KeyPEM),
		TrustedCAFile: writeTemp(t, "ca.pem", ca.CertPEM),
	}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	var endpoints []string
	for _, m := range members {
		endpoints = append(endpoints, m.client)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, TLS: tlsCfg, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	// Healthy: every member answers Status, all agree on one leader.
	var leader uint64
	waitCtx, waitCancel := context.WithTimeout(ctx, 60*time.Second)
	defer waitCancel()
	for {
		leader = 0
		ok := true
		for _, ep := range endpoints {
			sctx, scancel := context.WithTimeout(waitCtx, 2*time.Second)
			st, err := cli.Status(sctx, ep)
			scancel()
			if err != nil || st.Leader == 0 || (leader != 0 && st.Leader != leader) {
				ok = false
				break
			}
			leader = st.Leader
		}
		if ok {
			break
		}
		if waitCtx.Err() != nil {
			for _, m := range members {
				logs, _ := m.svc.Logs(ctx, 15)
				t.Logf("%s log:\n%s", m.name, logs)
			}
			t.Fatal("cluster not healthy within 60s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("3-member cluster healthy %s after start of upload", time.Since(begin))

	ml, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ml.Members) != 3 {
		t.Fatalf("%d members", len(ml.Members))
	}
	names := map[string]bool{}
	for _, mm := range ml.Members {
		names[mm.Name] = true
		if mm.IsLearner {
			t.Errorf("%s is a learner", mm.Name)
		}
	}
	if !names["m1"] || !names["m2"] || !names["m3"] {
		t.Fatalf("members %v", names)
	}
	if _, err := cli.Put(ctx, "over-ssh", "yes"); err != nil {
		t.Fatal(err)
	}
	for _, ep := range endpoints {
		one, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, TLS: tlsCfg, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		r, err := one.Get(ctx, "over-ssh")
		one.Close()
		if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "yes" {
			t.Fatalf("get via %s: %v %v", ep, r, err)
		}
	}

	// Re-running the same steps changes nothing: binary and config are
	// skipped by hash, Start finds the member running.
	for _, m := range members {
		before, _ := m.svc.Status(ctx)
		if changed, err := m.c.UploadFile(ctx, stockEtcd, path.Join(m.install, "bin", "etcd"), 0o755); err != nil || changed {
			t.Fatalf("re-upload binary on %s: changed=%v %v", m.name, changed, err)
		}
		if err := m.svc.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if after, _ := m.svc.Status(ctx); after.PID != before.PID {
			t.Fatalf("%s restarted by an idempotent Start", m.name)
		}
	}

	// Scale out the way etcd_cluster will: add the member as a learner,
	// start it with initial-cluster-state "existing" and a clean data dir
	// (otherwise it would mint its own member ID, or reuse an old one),
	// then promote it once it has caught up.
	joinStart := time.Now()
	// Right after bootstrap etcd refuses reconfiguration ("unhealthy
	// cluster") until the leader has been connected to every member for a
	// few seconds (strict-reconfig-check): retry.
	var add *clientv3.MemberAddResponse
	for {
		add, err = cli.MemberAddAsLearner(ctx, []string{joiner.peerURL})
		if err == nil {
			break
		}
		if !errors.Is(err, rpctypes.ErrUnhealthy) || time.Since(joinStart) > 30*time.Second {
			t.Fatalf("member add: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	var joinInitial []etcdconf.Member
	for _, mm := range add.Members {
		name := mm.Name
		if mm.ID == add.Member.ID {
			name = joiner.name // unnamed until it starts
		}
		joinInitial = append(joinInitial, etcdconf.Member{Name: name, PeerURLs: mm.PeerURLs})
	}
	dataDir := path.Join(joiner.install, "data")
	if st, err := InspectDataDir(ctx, joiner.c, dataDir); err != nil || st.HasMember {
		t.Fatalf("joiner data dir: %+v %v", st, err)
	}
	if err := setup(joiner, joinInitial, etcdconf.StateExisting); err != nil {
		t.Fatal(err)
	}
	if err := joiner.svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	members = append(members, joiner)
	promoteCtx, promoteCancel := context.WithTimeout(ctx, 60*time.Second)
	defer promoteCancel()
	for {
		_, err := cli.MemberPromote(promoteCtx, add.Member.ID)
		if err == nil {
			break
		}
		if promoteCtx.Err() != nil {
			logs, _ := joiner.svc.Logs(ctx, 20)
			t.Fatalf("promote %s: %v\n%s", joiner.name, err, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The promotion can be applied before the joiner has published its
	// name and client URLs (its own raft proposal once it runs): wait for
	// both, within a limit.
	listCtx, listCancel := context.WithTimeout(ctx, 30*time.Second)
	defer listCancel()
	for {
		ml, err = cli.MemberList(listCtx)
		if err != nil {
			t.Fatal(err)
		}
		voters := 0
		for _, mm := range ml.Members {
			if !mm.IsLearner && len(mm.ClientURLs) > 0 {
				voters++
			}
		}
		if voters == 4 {
			break
		}
		select {
		case <-listCtx.Done():
			t.Fatalf("after join: %d started voting members of %d", voters, len(ml.Members))
		case <-time.After(100 * time.Millisecond):
		}
	}
	if st, _ := InspectDataDir(ctx, joiner.c, dataDir); !st.HasMember {
		t.Fatal("joined member has no member dir")
	}
	// It has the data written before it joined.
	jc, err := clientv3.New(clientv3.Config{Endpoints: []string{joiner.client}, TLS: tlsCfg, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	r, err := jc.Get(ctx, "over-ssh")
	jc.Close()
	if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "yes" {
		t.Fatalf("get via the joined member: %v %v", r, err)
	}
	t.Logf("4th member joined as learner and promoted in %s", time.Since(joinStart))

	parallel("stop", func(m *member) error { return m.svc.Stop(ctx) })
	for _, m := range members {
		st, err := m.svc.Status(ctx)
		if err != nil || st.Running {
			t.Fatalf("%s after stop: %+v %v", m.name, st, err)
		}
	}
	parallel("remove", func(m *member) error { return m.svc.Remove(ctx) })
	t.Logf("total %s", time.Since(begin))
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := path.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
