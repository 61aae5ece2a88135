package client_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// open connects a Client to the cluster through Config.Resolve, as the
// provider does.
func open(t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	if cfg.LookupEnv == nil {
		cfg.LookupEnv = func(string) (string, bool) { return "", false }
	}
	s, err := cfg.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.Open(testCtx(t), s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

func TestKeyOperations(t *testing.T) {
	cluster := testserver.Start(t, testserver.WithMembers(1))
	ctx := testCtx(t)
	cl := open(t, client.Config{Endpoints: cluster.Endpoints()})
	raw := cluster.Client()

	t.Run("create if absent", func(t *testing.T) {
		key := "/client/" + t.Name()
		kv, err := cl.CreateKey(ctx, key, []byte("v1"), 0)
		if err != nil {
			t.Fatal(err)
		}
		if kv.Version != 1 || kv.CreateRevision != kv.ModRevision || string(kv.Value) != "v1" {
			t.Fatalf("created %+v", kv)
		}
		_, err = cl.CreateKey(ctx, key, []byte("v2"), 0)
		var exists *client.KeyExistsError
		if !errors.As(err, &exists) || !errors.Is(err, client.ErrKeyExists) || exists.Current.ModRevision != kv.ModRevision {
			t.Fatalf("second create: %v", err)
		}
		got, err := cl.GetKey(ctx, key)
		if err != nil || string(got.Value) != "v1" {
			t.Fatalf("existing value overwritten: %+v %v", got, err)
		}
	})

	t.Run("update guarded by mod_revision", func(t *testing.T) {
		key := "/client/" + t.Name()
		kv, err := cl.CreateKey(ctx, key, []byte("v1"), 0)
		if err != nil {
			t.Fatal(err)
		}
		up, err := cl.UpdateKey(ctx, key, []byte{0xff, 0}, 0, kv.ModRevision)
		if err != nil {
			t.Fatal(err)
		}
		if up.Version != 2 || up.CreateRevision != kv.CreateRevision || up.ModRevision <= kv.ModRevision || !bytes.Equal(up.Value, []byte{0xff, 0}) {
			t.Fatalf("updated %+v", up)
		}

		// Someone else writes between our read (plan) and our write (apply).
		other, err := raw.Put(ctx, key, "theirs")
		if err != nil {
			t.Fatal(err)
		}
		_, err = cl.UpdateKey(ctx, key, []byte("ours"), 0, up.ModRevision)
		var changed *client.KeyChangedError
		if !errors.As(err, &changed) || !errors.Is(err, client.ErrKeyChanged) {
			t.Fatalf("stale update: %v", err)
		}
		if changed.Expected != up.ModRevision || changed.Actual != other.Header.Revision {
			t.Fatalf("conflict = %+v, want expected %d actual %d", changed, up.ModRevision, other.Header.Revision)
		}
		if got, _ := cl.GetKey(ctx, key); string(got.Value) != "theirs" {
			t.Fatalf("their value was overwritten: %q", got.Value)
		}

		// Deleted by someone else: still a conflict, and nothing recreated.
		if _, err := raw.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		_, err = cl.UpdateKey(ctx, key, []byte("ours"), 0, other.Header.Revision)
		if !errors.As(err, &changed) || changed.Actual != 0 || !strings.Contains(err.Error(), "deleted") {
			t.Fatalf("update of deleted key: %v", err)
		}
		if _, err := cl.GetKey(ctx, key); !errors.Is(err, client.ErrKeyNotFound) {
			t.Fatalf("deleted key recreated: %v", err)
		}
		if _, err := cl.UpdateKey(ctx, key, []byte("x"), 0, 0); err == nil {
			t.Fatal("update with mod_revision 0 accepted")
		}
	})

	t.Run("delete guarded by mod_revision", func(t *testing.T) {
		key := "/client/" + t.Name()
		kv, err := cl.CreateKey(ctx, key, []byte("v1"), 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Put(ctx, key, "theirs"); err != nil {
			t.Fatal(err)
		}
		if err := cl.DeleteKey(ctx, key, kv.ModRevision); !errors.Is(err, client.ErrKeyChanged) {
			t.Fatalf("stale delete: %v", err)
		}
		cur, err := cl.GetKey(ctx, key)
		if err != nil {
			t.Fatalf("their value was deleted: %v", err)
		}
		if err := cl.DeleteKey(ctx, key, cur.ModRevision); err != nil {
			t.Fatal(err)
		}
		if err := cl.DeleteKey(ctx, key, cur.ModRevision); err != nil {
			t.Fatalf("deleting a deleted key: %v", err)
		}
	})

	t.Run("lease", func(t *testing.T) {
		key := "/client/" + t.Name()
		lease, err := raw.Grant(ctx, 60)
		if err != nil {
			t.Fatal(err)
		}
		kv, err := cl.CreateKey(ctx, key, []byte("v"), int64(lease.ID))
		if err != nil {
			t.Fatal(err)
		}
		if kv.Lease != int64(lease.ID) {
			t.Fatalf("lease = %x, want %x", kv.Lease, lease.ID)
		}
		// Updating without a lease detaches the key.
		up, err := cl.UpdateKey(ctx, key, []byte("v"), 0, kv.ModRevision)
		if err != nil || up.Lease != 0 {
			t.Fatalf("detach: %+v %v", up, err)
		}
		if _, err := raw.Revoke(ctx, lease.ID); err != nil {
			t.Fatal(err)
		}
		_, err = cl.UpdateKey(ctx, key, []byte("v"), int64(lease.ID), up.ModRevision)
		if err == nil || !strings.Contains(err.Error(), "expired or was revoked") {
			t.Fatalf("revoked lease: %v", err)
		}
	})
}

func TestEnvEndpointsConnect(t *testing.T) {
	cluster := testserver.Start(t, testserver.WithMembers(1))
	cl := open(t, client.Config{LookupEnv: func(k string) (string, bool) {
		if k == client.EnvEndpoints {
			return strings.Join(cluster.Endpoints(), ","), true
		}
		return "", false
	}})
	ctx := testCtx(t)
	if _, err := cluster.Client().Put(ctx, "/client/env", "ok"); err != nil {
		t.Fatal(err)
	}
	kv, err := cl.GetKey(ctx, "/client/env")
	if err != nil || string(kv.Value) != "ok" {
		t.Fatalf("get through ETCDCTL_ENDPOINTS: %+v %v", kv, err)
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ep := "http://" + l.Addr().String()
	_ = l.Close() // nothing listens there now

	cl := open(t, client.Config{Endpoints: []string{ep}, RequestTimeout: 500 * time.Millisecond, DialTimeout: 500 * time.Millisecond})
	_, err = cl.GetKey(testCtx(t), "/k")
	if !errors.Is(err, client.ErrUnreachable) || !strings.Contains(err.Error(), ep) || !strings.Contains(err.Error(), `read key "/k"`) {
		t.Fatalf("err = %v, want ErrUnreachable naming %s", err, ep)
	}

	// With credentials, Open authenticates and fails within dial_timeout.
	s, err := client.Config{Endpoints: []string{ep}, Username: "u", Password: "secret-pw", DialTimeout: 500 * time.Millisecond,
		LookupEnv: func(string) (string, bool) { return "", false }}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Open(testCtx(t), s)
	if !errors.Is(err, client.ErrUnreachable) || !strings.Contains(err.Error(), ep) || !strings.Contains(err.Error(), "500ms (dial_timeout)") || strings.Contains(err.Error(), "secret-pw") {
		t.Fatalf("Open with credentials: %v", err)
	}
}

func TestTLSAndAuth(t *testing.T) {
	cluster := testserver.Start(t, testserver.WithMembers(1), testserver.WithTLS(), testserver.WithAuth())
	ctx := testCtx(t)
	info := cluster.TLS()
	user, password := cluster.RootCredentials()

	// Files for the CA and key, PEM content for the certificate.
	cl := open(t, client.Config{
		Endpoints: cluster.Endpoints(), Username: user, Password: password,
		CACert: info.CAFile, Cert: string(info.CertPEM), Key: info.KeyFile,
	})
	if _, err := cl.CreateKey(ctx, "/tls/ok", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}

	// Wrong password: names the user, never the password.
	s, err := client.Config{
		Endpoints: cluster.Endpoints(), Username: user, Password: "wrong-secret",
		CACert: string(info.CACertPEM), Cert: info.CertFile, Key: string(info.KeyPEM),
		LookupEnv: func(string) (string, bool) { return "", false },
	}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Open(ctx, s)
	if !errors.Is(err, client.ErrAuthFailed) || !strings.Contains(err.Error(), `user "root"`) || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("wrong password: %v", err)
	}

	// A user limited to /app/: permission denied names the user and the key.
	raw := cluster.Client()
	for _, step := range []func() error{
		func() error { _, err := raw.RoleAdd(ctx, "app"); return err },
		func() error {
			_, err := raw.RoleGrantPermission(ctx, "app", "/app/", clientv3.GetPrefixRangeEnd("/app/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := raw.UserAdd(ctx, "app", "app-pw"); return err },
		func() error { _, err := raw.UserGrantRole(ctx, "app", "app"); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	certPEM, keyPEM, err := cluster.IssueClientCert("app")
	if err != nil {
		t.Fatal(err)
	}
	app := open(t, client.Config{
		Endpoints: cluster.Endpoints(), Username: "app", Password: "app-pw",
		CACert: string(info.CACertPEM), Cert: string(certPEM), Key: string(keyPEM),
	})
	if _, err := app.CreateKey(ctx, "/app/x", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	_, err = app.CreateKey(ctx, "/other/x", []byte("v"), 0)
	if !errors.Is(err, client.ErrPermissionDenied) || !strings.Contains(err.Error(), `user "app"`) || !strings.Contains(err.Error(), `"/other/x"`) {
		t.Fatalf("permission denied: %v", err)
	}
}
