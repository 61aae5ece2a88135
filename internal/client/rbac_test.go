package client_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

func perm(key, end string, a client.Access) client.Permission {
	return client.Permission{KeyRange: client.KeyRange{Key: key, RangeEnd: end}, Access: a}
}

func TestDiffPermissions(t *testing.T) {
	current := []client.Permission{
		perm("/a", "", client.AccessRead),
		perm("/app/", "/app0", client.AccessRead),
		perm("/gone", "", client.AccessWrite),
	}
	desired := []client.Permission{
		perm("/app/", "/app0", client.AccessReadWrite), // access changed
		perm("/a", "", client.AccessRead),              // unchanged
		perm("/new", "/nex", client.AccessWrite),       // added
	}
	grant, revoke := client.DiffPermissions(current, desired)
	wantGrant := []client.Permission{perm("/app/", "/app0", client.AccessReadWrite), perm("/new", "/nex", client.AccessWrite)}
	wantRevoke := []client.Permission{perm("/gone", "", client.AccessWrite)}
	if !slices.Equal(grant, wantGrant) || !slices.Equal(revoke, wantRevoke) {
		t.Fatalf("DiffPermissions = grant %v, revoke %v; want %v, %v", grant, revoke, wantGrant, wantRevoke)
	}
	if client.SamePermissions(current, desired) {
		t.Fatal("SamePermissions of different sets")
	}
	shuffled := []client.Permission{current[2], current[0], current[1]}
	if !client.SamePermissions(current, shuffled) {
		t.Fatal("SamePermissions depends on order")
	}
	if g, r := client.DiffPermissions(current, shuffled); len(g)+len(r) != 0 {
		t.Fatalf("no-op diff: grant %v revoke %v", g, r)
	}

	add, remove := client.DiffNames([]string{"a", "b", "c"}, []string{"d", "b", "a", "d"})
	if !slices.Equal(add, []string{"d"}) || !slices.Equal(remove, []string{"c"}) {
		t.Fatalf("DiffNames = %v, %v", add, remove)
	}
}

func TestKeyRange(t *testing.T) {
	for _, tc := range []struct {
		r      client.KeyRange
		prefix bool
		str    string
		valid  bool
	}{
		{client.KeyRange{Key: "/app/"}, false, `key "/app/"`, true},
		{client.KeyRange{Key: "/app/", RangeEnd: "/app0"}, true, `prefix "/app/"`, true},
		{client.KeyRange{Key: "/a", RangeEnd: "/c"}, false, `range ["/a", "/c")`, true},
		{client.KeyRange{Key: "/a", RangeEnd: "/b"}, true, `prefix "/a"`, true},
		{client.KeyRange{Key: "/a", RangeEnd: "\x00"}, false, `keys from "/a" on`, true},
		{client.KeyRange{Key: "a\xff", RangeEnd: "b"}, true, `prefix "a\xff"`, true},
		{client.KeyRange{Key: "/b", RangeEnd: "/a"}, false, `range ["/b", "/a")`, false},
		{client.KeyRange{Key: "/a", RangeEnd: "/a"}, false, `range ["/a", "/a")`, false},
		{client.KeyRange{Key: ""}, false, `key ""`, false},
	} {
		if got := tc.r.IsPrefix(); got != tc.prefix {
			t.Errorf("%#v.IsPrefix() = %t", tc.r, got)
		}
		if got := tc.r.String(); got != tc.str {
			t.Errorf("%#v.String() = %s, want %s", tc.r, got, tc.str)
		}
		if err := tc.r.Validate(); (err == nil) != tc.valid {
			t.Errorf("%#v.Validate() = %v", tc.r, err)
		}
	}
	for _, s := range client.Accesses {
		if a, err := client.ParseAccess(s); err != nil || string(a) != s {
			t.Errorf("ParseAccess(%q) = %q, %v", s, a, err)
		}
	}
	if _, err := client.ParseAccess("READ"); err == nil || !strings.Contains(err.Error(), "read, write, readwrite") {
		t.Errorf("ParseAccess(READ) = %v", err)
	}
}

func TestValidName(t *testing.T) {
	for name, ok := range map[string]bool{"app": true, "team-a.reader": true, "": false, " app": false, "a\nb": false, "\xff": false} {
		if err := client.ValidName("user", name); (err == nil) != ok {
			t.Errorf("ValidName(%q) = %v", name, err)
		}
	}
}

func TestRolesAndUsers(t *testing.T) {
	cluster := testserver.Start(t, testserver.WithMembers(1))
	ctx := testCtx(t)
	cl := open(t, client.Config{Endpoints: cluster.Endpoints()})

	if err := cl.CreateRole(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if err := cl.CreateRole(ctx, "app"); !errors.Is(err, client.ErrRoleExists) {
		t.Fatalf("second CreateRole: %v", err)
	}
	if _, err := cl.GetRole(ctx, "nope"); !errors.Is(err, client.ErrRoleNotFound) {
		t.Fatalf("GetRole(nope): %v", err)
	}
	p1 := perm("/app/", client.PrefixRangeEnd("/app/"), client.AccessRead)
	p2 := perm("/b", "", client.AccessWrite)
	for _, p := range []client.Permission{p2, p1, perm("/app/", "/app0", client.AccessReadWrite)} {
		if err := cl.GrantPermission(ctx, "app", p); err != nil {
			t.Fatal(err)
		}
	}
	got, err := cl.GetRole(ctx, "app")
	want := []client.Permission{perm("/app/", "/app0", client.AccessReadWrite), p2}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("GetRole = %v, %v; want %v (a grant on the same range replaces the access)", got, err, want)
	}
	if err := cl.RevokePermission(ctx, "app", p2); err != nil {
		t.Fatal(err)
	}
	if err := cl.RevokePermission(ctx, "app", p2); err != nil {
		t.Fatalf("revoking a revoked permission: %v", err)
	}
	if err := cl.GrantPermission(ctx, "nope", p2); !errors.Is(err, client.ErrRoleNotFound) {
		t.Fatalf("grant to a missing role: %v", err)
	}

	if err := cl.CreateUser(ctx, "alice", "pw-alice", false); err != nil {
		t.Fatal(err)
	}
	if err := cl.CreateUser(ctx, "alice", "x", false); !errors.Is(err, client.ErrUserExists) {
		t.Fatalf("second CreateUser: %v", err)
	}
	if err := cl.CreateUser(ctx, "bob", "", false); err == nil {
		t.Fatal("CreateUser with an empty password succeeded")
	}
	if err := cl.CreateUser(ctx, "carol", "", true); err != nil {
		t.Fatal(err)
	}
	if err := cl.GrantRole(ctx, "alice", "nope"); !errors.Is(err, client.ErrRoleNotFound) {
		t.Fatalf("granting a missing role: %v", err)
	}
	for _, r := range []string{"app", client.RootName, "app"} {
		if err := cl.GrantRole(ctx, "alice", r); err != nil {
			t.Fatal(err)
		}
	}
	if roles, err := cl.GetUser(ctx, "alice"); err != nil || !slices.Equal(roles, []string{"app", "root"}) {
		t.Fatalf("GetUser = %v, %v", roles, err)
	}
	if err := cl.RevokeRole(ctx, "alice", "root"); err != nil {
		t.Fatal(err)
	}
	if err := cl.RevokeRole(ctx, "alice", "root"); err != nil {
		t.Fatalf("revoking a revoked role: %v", err)
	}
	// Deleting a role takes it from its users.
	if err := cl.DeleteRole(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if roles, err := cl.GetUser(ctx, "alice"); err != nil || len(roles) != 0 {
		t.Fatalf("GetUser after DeleteRole = %v, %v", roles, err)
	}
	if err := cl.DeleteRole(ctx, "app"); !errors.Is(err, client.ErrRoleNotFound) {
		t.Fatalf("second DeleteRole: %v", err)
	}
	if err := cl.ChangePassword(ctx, "alice", "pw2"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ChangePassword(ctx, "nobody", "pw2"); !errors.Is(err, client.ErrUserNotFound) {
		t.Fatalf("ChangePassword(nobody): %v", err)
	}
	// Without authentication etcd cannot check passwords.
	if res, err := cl.CheckPassword(ctx, "alice", "pw2"); err != nil || res != client.PasswordUnchecked {
		t.Fatalf("CheckPassword with auth off = %v, %v", res, err)
	}
	for _, u := range []string{"alice", "carol"} {
		if err := cl.DeleteUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.GetUser(ctx, "alice"); !errors.Is(err, client.ErrUserNotFound) {
		t.Fatalf("GetUser after delete: %v", err)
	}
}

// The provider's one client is opened with root's credentials before
// authentication is enabled -- in the same apply that enables it. clientv3
// then gets "auth not enabled" from Authenticate and sends no token; once
// auth is on the server answers "user name is empty" and clientv3
// authenticates again. Every request before and after must work.
func TestEnableAuthWithPassword(t *testing.T) {
	cluster := testserver.Start(t, testserver.WithMembers(1))
	ctx := testCtx(t)
	const password = "s3cret-root-Pw"
	cl := open(t, client.Config{Endpoints: cluster.Endpoints(), Username: "root", Password: password})
	anon := open(t, client.Config{Endpoints: cluster.Endpoints()})

	var notReady *client.AuthNotReadyError
	if err := cl.EnableAuth(ctx, "root"); !errors.As(err, &notReady) || !notReady.NoRootUser || !errors.Is(err, client.ErrAuthNotReady) {
		t.Fatalf("EnableAuth without root: %v", err)
	}
	if err := cl.CreateUser(ctx, "root", password, false); err != nil {
		t.Fatal(err)
	}
	if err := cl.EnableAuth(ctx, "root"); !errors.As(err, &notReady) || !notReady.RootLacksRole {
		t.Fatalf("EnableAuth with root lacking the root role: %v", err)
	}
	if err := cl.GrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if err := cl.CheckAuthPrerequisites(ctx, ""); !errors.As(err, &notReady) || !notReady.NoIdentity {
		t.Fatalf("no identity: %v", err)
	}
	if err := cl.CreateUser(ctx, "plain", "pw-plain", false); err != nil {
		t.Fatal(err)
	}
	if err := cl.CheckAuthPrerequisites(ctx, "plain"); !errors.As(err, &notReady) || notReady.Identity != "plain" {
		t.Fatalf("identity without root: %v", err)
	}
	if enabled, _, err := cl.AuthState(ctx); err != nil || enabled {
		t.Fatalf("AuthState before = %t, %v", enabled, err)
	}

	if err := cl.EnableAuth(ctx, "root"); err != nil {
		t.Fatal(err)
	}
	enabled, rev, err := cl.AuthState(ctx)
	if err != nil || !enabled || rev == 0 {
		t.Fatalf("AuthState after = %t, %d, %v", enabled, rev, err)
	}
	// The same client goes on writing keys and managing roles.
	if _, err := cl.CreateKey(ctx, "/after-enable", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if err := cl.CreateRole(ctx, "later"); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.GetKey(ctx, "/after-enable"); !errors.Is(err, client.ErrAuthFailed) {
		t.Fatalf("anonymous read after enable: %v", err)
	}

	if res, err := cl.CheckPassword(ctx, "plain", "pw-plain"); err != nil || res != client.PasswordMatches {
		t.Fatalf("CheckPassword(right) = %v, %v", res, err)
	}
	if res, err := cl.CheckPassword(ctx, "plain", "wrong-guess"); err != nil || res != client.PasswordDiffers {
		t.Fatalf("CheckPassword(wrong) = %v, %v", res, err)
	}
	// A failed check locks nothing: the right password still works.
	if res, err := cl.CheckPassword(ctx, "plain", "pw-plain"); err != nil || res != client.PasswordMatches {
		t.Fatalf("CheckPassword(right) after a wrong one = %v, %v", res, err)
	}
	// The auth mark: checks leave it alone; a password change moves it.
	mark, err := cl.AuthMark(ctx)
	if err != nil || !mark.Enabled || mark.ClusterID == 0 || mark.Revision <= rev {
		t.Fatalf("AuthMark after creating a role = %+v, %v; want enabled, a cluster ID and a revision past %d", mark, err, rev)
	}
	if again, err := cl.AuthMark(ctx); err != nil || again != mark {
		t.Fatalf("AuthMark with no change = %+v, %v; want %+v", again, err, mark)
	}
	if err := cl.ChangePassword(ctx, "plain", "pw-plain-2"); err != nil {
		t.Fatal(err)
	}
	if moved, err := cl.AuthMark(ctx); err != nil || moved.Revision <= mark.Revision || moved.ClusterID != mark.ClusterID {
		t.Fatalf("AuthMark after a password change = %+v, %v; want the revision past %d", moved, err, mark.Revision)
	}

	// etcd itself refuses to remove root while auth is on.
	if err := cl.DeleteUser(ctx, "root"); !errors.Is(err, client.ErrRootProtected) {
		t.Fatalf("DeleteUser(root): %v", err)
	}
	if err := cl.RevokeRole(ctx, "root", "root"); !errors.Is(err, client.ErrRootProtected) {
		t.Fatalf("RevokeRole(root, root): %v", err)
	}

	// Wrong credentials: the error names the user, never the password.
	s, err := client.Config{Endpoints: cluster.Endpoints(), Username: "root", Password: "Wr0ng-pw-123",
		LookupEnv: func(string) (string, bool) { return "", false }}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Open(ctx, s)
	if !errors.Is(err, client.ErrAuthFailed) || !strings.Contains(err.Error(), `user "root"`) || strings.Contains(err.Error(), "Wr0ng-pw-123") {
		t.Fatalf("Open with a wrong password: %v", err)
	}

	if err := cl.DisableAuth(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.GetKey(ctx, "/after-enable"); err != nil {
		t.Fatalf("anonymous read after disable: %v", err)
	}
	if err := cl.DisableAuth(ctx); err != nil {
		t.Fatalf("second DisableAuth: %v", err)
	}
}

// With TLS client certificate authentication the provider has no user name:
// the certificate's common name is its identity.
func TestEnableAuthWithCertificate(t *testing.T) {
	cluster := testserver.Start(t, testserver.WithMembers(1), testserver.WithTLS())
	ctx := testCtx(t)
	info := cluster.TLS()
	certPEM, keyPEM, err := cluster.IssueClientCert("admin")
	if err != nil {
		t.Fatal(err)
	}
	cfg := client.Config{Endpoints: cluster.Endpoints(), CACert: info.CAFile, Cert: string(certPEM), Key: string(keyPEM),
		LookupEnv: func(string) (string, bool) { return "", false }}
	s, err := cfg.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Identity(); got != "admin" {
		t.Fatalf("Identity() = %q, want the certificate's common name", got)
	}
	if got := (&client.Settings{Username: "u", TLS: s.TLS}).Identity(); got != "u" {
		t.Fatalf("Identity() with a user name = %q", got)
	}
	if got := (&client.Settings{}).Identity(); got != "" {
		t.Fatalf("Identity() without credentials = %q", got)
	}
	cl := open(t, cfg)

	if err := cl.CreateUser(ctx, "root", "", true); err != nil {
		t.Fatal(err)
	}
	if err := cl.GrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	var notReady *client.AuthNotReadyError
	if err := cl.EnableAuth(ctx, s.Identity()); !errors.As(err, &notReady) || notReady.Identity != "admin" {
		t.Fatalf("EnableAuth as admin without the root role: %v", err)
	}
	if err := cl.CreateUser(ctx, "admin", "", true); err != nil {
		t.Fatal(err)
	}
	if err := cl.GrantRole(ctx, "admin", "root"); err != nil {
		t.Fatal(err)
	}
	if err := cl.EnableAuth(ctx, s.Identity()); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateKey(ctx, "/cert", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	// A certificate user without the needed role: the error names it.
	if err := cl.CreateUser(ctx, "limited", "", true); err != nil {
		t.Fatal(err)
	}
	limitedCert, limitedKey, err := cluster.IssueClientCert("limited")
	if err != nil {
		t.Fatal(err)
	}
	limited := open(t, client.Config{Endpoints: cluster.Endpoints(), CACert: info.CAFile, Cert: string(limitedCert), Key: string(limitedKey)})
	_, err = limited.CreateKey(ctx, "/not-mine", []byte("v"), 0)
	if !errors.Is(err, client.ErrPermissionDenied) ||
		!strings.Contains(err.Error(), `etcd user "limited" (the common name of the client certificate) has no role that grants this on key "/not-mine"`) {
		t.Fatalf("write as a certificate user without a role: %v", err)
	}
	if _, err := limited.GetUser(ctx, "admin"); !errors.Is(err, client.ErrPermissionDenied) || !strings.Contains(err.Error(), `etcd user "limited" (the common name`) {
		t.Fatalf("admin request as a certificate user without root: %v", err)
	}
	if res, err := cl.CheckPassword(ctx, "admin", "anything"); err != nil || res != client.PasswordDiffers {
		t.Fatalf("CheckPassword of a user without password = %v, %v", res, err)
	}
	if err := cl.DisableAuth(ctx); err != nil {
		t.Fatal(err)
	}
}
