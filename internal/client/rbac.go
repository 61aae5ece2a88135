package client

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// RootName is the name of etcd's built-in superuser and of its role. Auth can
// only be enabled while a user "root" holding the role "root" exists.
const RootName = "root"

// Sentinel errors of the role and user operations.
var (
	ErrRoleNotFound = errors.New("role not found")
	ErrUserNotFound = errors.New("user not found")
	ErrRoleExists   = errors.New("role already exists")
	ErrUserExists   = errors.New("user already exists")
	// ErrAuthNotReady: enabling authentication now could lock the operator
	// or the provider out; an *AuthNotReadyError says what is missing.
	ErrAuthNotReady = errors.New("authentication cannot be enabled safely")
	// ErrRootProtected: etcd refuses to remove the root user, the root
	// role or the root user's root role while authentication is enabled.
	ErrRootProtected = errors.New("etcd protects root while authentication is enabled")
	// ErrEnabledButRejected: EnableAuth enabled authentication, but the
	// provider's own credentials were rejected right after.
	ErrEnabledButRejected = errors.New("authentication is now enabled, but the provider's own credentials do not work")
)

// Access is what a role permission allows on its keys.
type Access string

// The accesses etcd knows.
const (
	AccessRead      Access = "read"
	AccessWrite     Access = "write"
	AccessReadWrite Access = "readwrite"
)

// Accesses lists the valid Access values, for validators and docs.
var Accesses = []string{string(AccessRead), string(AccessWrite), string(AccessReadWrite)}

// ParseAccess accepts read, write or readwrite.
func ParseAccess(s string) (Access, error) {
	switch a := Access(s); a {
	case AccessRead, AccessWrite, AccessReadWrite:
		return a, nil
	}
	return "", fmt.Errorf("access %q is not one of %s", s, strings.Join(Accesses, ", "))
}

func (a Access) permType() clientv3.PermissionType {
	switch a {
	case AccessRead:
		return clientv3.PermissionType(clientv3.PermRead)
	case AccessWrite:
		return clientv3.PermissionType(clientv3.PermWrite)
	}
	return clientv3.PermissionType(clientv3.PermReadWrite)
}

func accessOf(t authpb.Permission_Type) (Access, error) {
	switch t {
	case authpb.Permission_READ:
		return AccessRead, nil
	case authpb.Permission_WRITE:
		return AccessWrite, nil
	case authpb.Permission_READWRITE:
		return AccessReadWrite, nil
	}
	return "", fmt.Errorf("unknown permission type %d", t)
}

// KeyRange is the key range of a permission as etcd stores it: the keys from
// Key up to, not including, RangeEnd. An empty RangeEnd means the single key
// Key; NoPrefixEnd means every key from Key on.
type KeyRange struct {
	Key      string
	RangeEnd string
}

// IsPrefix tells whether r covers exactly the keys that start with r.Key.
func (r KeyRange) IsPrefix() bool { return r.RangeEnd != "" && r.RangeEnd == PrefixRangeEnd(r.Key) }

func (r KeyRange) String() string {
	switch {
	case r.RangeEnd == "":
		return "key " + strconv.Quote(r.Key)
	case r.IsPrefix():
		return "prefix " + strconv.Quote(r.Key)
	case r.RangeEnd == NoPrefixEnd:
		return "keys from " + strconv.Quote(r.Key) + " on"
	}
	return fmt.Sprintf("range [%q, %q)", r.Key, r.RangeEnd)
}

// Validate applies etcd's rules for a permission range, so that a bad one is
// reported before anything is written: the key is not empty and the range
// end is empty (one key), NoPrefixEnd (to the end) or after the key.
func (r KeyRange) Validate() error {
	if r.Key == "" {
		return errors.New("the key is empty; etcd permissions start at a non-empty key (for every key use key = \"\\u0000\" with range_end = \"\\u0000\")")
	}
	if r.RangeEnd == "" || r.RangeEnd == NoPrefixEnd || r.Key < r.RangeEnd {
		return nil
	}
	return fmt.Errorf("range_end %q is not after key %q, so the range is empty; use a range_end that sorts after the key, or prefix = true", r.RangeEnd, r.Key)
}

// Permission is one grant of a role.
type Permission struct {
	KeyRange
	Access Access
}

func (p Permission) String() string { return string(p.Access) + " on " + p.KeyRange.String() }

// SortPermissions orders permissions by key, then range end (etcd's order).
func SortPermissions(ps []Permission) {
	slices.SortFunc(ps, func(a, b Permission) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.RangeEnd, b.RangeEnd))
	})
}

// DiffPermissions returns the grants and revokes that turn current into
// desired: ranges only in current are revoked, ranges only in desired or
// with another access are granted (a grant on an existing range replaces
// its access). Ranges present in both with the same access are untouched.
// Each range must appear at most once in each list.
func DiffPermissions(current, desired []Permission) (grant, revoke []Permission) {
	have := make(map[KeyRange]Access, len(current))
	for _, p := range current {
		have[p.KeyRange] = p.Access
	}
	want := make(map[KeyRange]bool, len(desired))
	for _, p := range desired {
		want[p.KeyRange] = true
		if a, ok := have[p.KeyRange]; !ok || a != p.Access {
			grant = append(grant, p)
		}
	}
	for _, p := range current {
		if !want[p.KeyRange] {
			revoke = append(revoke, p)
		}
	}
	SortPermissions(grant)
	SortPermissions(revoke)
	return grant, revoke
}

// SamePermissions tells whether a and b grant the same accesses on the same
// ranges, in any order.
func SamePermissions(a, b []Permission) bool {
	g, r := DiffPermissions(a, b)
	return len(g) == 0 && len(r) == 0 && len(a) == len(b)
}

// DiffNames returns the names to add and to remove to turn current into
// desired, sorted.
func DiffNames(current, desired []string) (add, remove []string) {
	for _, n := range desired {
		if !slices.Contains(current, n) && !slices.Contains(add, n) {
			add = append(add, n)
		}
	}
	for _, n := range current {
		if !slices.Contains(desired, n) && !slices.Contains(remove, n) {
			remove = append(remove, n)
		}
	}
	slices.Sort(add)
	slices.Sort(remove)
	return add, remove
}

// GetRole returns the permissions of role, sorted. A missing role yields an
// error wrapping ErrRoleNotFound. For the root role etcd reports one
// read-write permission on every key whatever was granted to it.
func (c *Client) GetRole(ctx context.Context, role string) ([]Permission, error) {
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	resp, err := c.RoleGet(ctx, role)
	if err != nil {
		if isRPC(err, rpctypes.ErrRoleNotFound) {
			return nil, fmt.Errorf("role %q: %w", role, ErrRoleNotFound)
		}
		return nil, c.Describe(err, fmt.Sprintf("read role %q", role), "")
	}
	out := make([]Permission, 0, len(resp.Perm))
	for _, p := range resp.Perm {
		a, err := accessOf(p.PermType)
		if err != nil {
			return nil, fmt.Errorf("read role %q: permission on %q: %w", role, p.Key, err)
		}
		out = append(out, Permission{KeyRange: KeyRange{Key: string(p.Key), RangeEnd: string(p.RangeEnd)}, Access: a})
	}
	SortPermissions(out)
	return out, nil
}

// CreateRole adds a role without permissions. An existing role yields an
// error wrapping ErrRoleExists.
func (c *Client) CreateRole(ctx context.Context, role string) error {
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	if _, err := c.RoleAdd(ctx, role); err != nil {
		if isRPC(err, rpctypes.ErrRoleAlreadyExist) {
			return fmt.Errorf("role %q: %w", role, ErrRoleExists)
		}
		return c.Describe(err, fmt.Sprintf("create role %q", role), "")
	}
	return nil
}

// DeleteRole removes a role and takes it from every user holding it. A
// missing role yields an error wrapping ErrRoleNotFound.
func (c *Client) DeleteRole(ctx context.Context, role string) error {
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	if _, err := c.RoleDelete(ctx, role); err != nil {
		switch {
		case isRPC(err, rpctypes.ErrRoleNotFound):
			return fmt.Errorf("role %q: %w", role, ErrRoleNotFound)
		case isRPC(err, rpctypes.ErrInvalidAuthMgmt):
			return fmt.Errorf("delete role %q: %w", role, ErrRootProtected)
		}
		return c.Describe(err, fmt.Sprintf("delete role %q", role), "")
	}
	return nil
}

// GrantPermission grants p to role, replacing the access of a permission on
// the same range.
func (c *Client) GrantPermission(ctx context.Context, role string, p Permission) error {
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	if _, err := c.RoleGrantPermission(ctx, role, p.Key, p.RangeEnd, p.Access.permType()); err != nil {
		if isRPC(err, rpctypes.ErrRoleNotFound) {
			return fmt.Errorf("grant %s to role %q: %w", p, role, ErrRoleNotFound)
		}
		return c.Describe(err, fmt.Sprintf("grant %s to role %q", p, role), "")
	}
	return nil
}

// RevokePermission revokes role's permission on p's range. A permission
// that is already gone is not an error.
func (c *Client) RevokePermission(ctx context.Context, role string, p Permission) error {
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	if _, err := c.RoleRevokePermission(ctx, role, p.Key, p.RangeEnd); err != nil {
		switch {
		case isRPC(err, rpctypes.ErrPermissionNotGranted):
			return nil
		case isRPC(err, rpctypes.ErrRoleNotFound):
			return fmt.Errorf("revoke %s from role %q: %w", p.KeyRange, role, ErrRoleNotFound)
		}
		return c.Describe(err, fmt.Sprintf("revoke %s from role %q", p.KeyRange, role), "")
	}
	return nil
}

// GetUser returns the roles of user, sorted. A missing user yields an error
// wrapping ErrUserNotFound. etcd never returns a password or its hash.
func (c *Client) GetUser(ctx context.Context, user string) ([]string, error) {
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	resp, err := c.UserGet(ctx, user)
	if err != nil {
		if isRPC(err, rpctypes.ErrUserNotFound) {
			return nil, fmt.Errorf("user %q: %w", user, ErrUserNotFound)
		}
		return nil, c.Describe(err, fmt.Sprintf("read user %q", user), "")
	}
	roles := slices.Clone(resp.Roles)
	slices.Sort(roles)
	return roles, nil
}

// CreateUser adds a user without roles, with a password or, when noPassword
// is set, without one (the user then authenticates with a TLS client
// certificate whose common name is the user name). An existing user yields
// an error wrapping ErrUserExists. The password never appears in an error.
func (c *Client) CreateUser(ctx context.Context, user, password string, noPassword bool) error {
	if !noPassword && password == "" {
		return fmt.Errorf("create user %q: the password is empty; set one, or create the user without a password", user)
	}
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	var err error
	if noPassword {
		_, err = c.UserAddWithOptions(ctx, user, "", &clientv3.UserAddOptions{NoPassword: true})
	} else {
		_, err = c.UserAdd(ctx, user, password)
	}
	if err != nil {
		if isRPC(err, rpctypes.ErrUserAlreadyExist) {
			return fmt.Errorf("user %q: %w", user, ErrUserExists)
		}
		return c.Describe(err, fmt.Sprintf("create user %q", user), "")
	}
	return nil
}

// ChangePassword sets user's password. etcd keeps a user created without a
// password without one. The password never appears in an error.
func (c *Client) ChangePassword(ctx context.Context, user, password string) error {
	if password == "" {
		return fmt.Errorf("change the password of user %q: the new password is empty", user)
	}
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	if _, err := c.UserChangePassword(ctx, user, password); err != nil {
		if isRPC(err, rpctypes.ErrUserNotFound) {
			return fmt.Errorf("change the password of user %q: %w", user, ErrUserNotFound)
		}
		return c.Describe(err, fmt.Sprintf("change the password of user %q", user), "")
	}
	return nil
}

// DeleteUser removes a user. A missing user yields an error wrapping
// ErrUserNotFound.
func (c *Client) DeleteUser(ctx context.Context, user string) error {
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	if _, err := c.UserDelete(ctx, user); err != nil {
		switch {
		case isRPC(err, rpctypes.ErrUserNotFound):
			return fmt.Errorf("user %q: %w", user, ErrUserNotFound)
		case isRPC(err, rpctypes.ErrInvalidAuthMgmt):
			return fmt.Errorf("delete user %q: %w", user, ErrRootProtected)
		}
		return c.Describe(err, fmt.Sprintf("delete user %q", user), "")
	}
	return nil
}

// GrantRole gives role to user. Granting a role the user holds is a no-op.
func (c *Client) GrantRole(ctx context.Context, user, role string) error {
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	if _, err := c.UserGrantRole(ctx, user, role); err != nil {
		switch {
		case isRPC(err, rpctypes.ErrRoleNotFound):
			return fmt.Errorf("grant role %q to user %q: %w; create the role first", role, user, ErrRoleNotFound)
		case isRPC(err, rpctypes.ErrUserNotFound):
			return fmt.Errorf("grant role %q to user %q: %w", role, user, ErrUserNotFound)
		}
		return c.Describe(err, fmt.Sprintf("grant role %q to user %q", role, user), "")
	}
	return nil
}

// RevokeRole takes role from user. A role the user does not hold is not an
// error.
func (c *Client) RevokeRole(ctx context.Context, user, role string) error {
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	if _, err := c.UserRevokeRole(ctx, user, role); err != nil {
		switch {
		case isRPC(err, rpctypes.ErrRoleNotGranted):
			return nil
		case isRPC(err, rpctypes.ErrUserNotFound):
			return fmt.Errorf("revoke role %q from user %q: %w", role, user, ErrUserNotFound)
		case isRPC(err, rpctypes.ErrInvalidAuthMgmt):
			return fmt.Errorf("revoke role %q from user %q: %w", role, user, ErrRootProtected)
		}
		return c.Describe(err, fmt.Sprintf("revoke role %q from user %q", role, user), "")
	}
	return nil
}

// PasswordCheck is the outcome of CheckPassword.
type PasswordCheck int

const (
	// PasswordUnchecked: authentication is disabled, so etcd cannot check
	// passwords.
	PasswordUnchecked PasswordCheck = iota
	// PasswordMatches: etcd accepted the password.
	PasswordMatches
	// PasswordDiffers: etcd rejected the password (or the user has none).
	PasswordDiffers
)

// CheckPassword asks etcd whether password is user's, by authenticating as
// user once. etcd has no lock-out of failed attempts, so a mismatch locks
// nothing; the token etcd issues on a match is discarded (a simple token
// expires on its own, a JWT is stateless). The password travels only to
// etcd, on the provider's own connection, and never appears in an error.
func (c *Client) CheckPassword(ctx context.Context, user, password string) (PasswordCheck, error) {
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	_, err := c.Authenticate(ctx, user, password)
	switch {
	case err == nil:
		return PasswordMatches, nil
	case isRPC(err, rpctypes.ErrAuthNotEnabled):
		return PasswordUnchecked, nil
	case isRPC(err, rpctypes.ErrAuthFailed),
		// auth.ErrNoPasswordUser has no gRPC code of its own.
		strings.Contains(err.Error(), "no password user"):
		return PasswordDiffers, nil
	}
	return PasswordUnchecked, c.Describe(err, fmt.Sprintf("check the password of user %q", user), "")
}

// AuthState reports whether authentication is enabled and the cluster's
// auth revision (bumped by every change to users, roles and permissions).
func (c *Client) AuthState(ctx context.Context) (enabled bool, revision uint64, err error) {
	m, err := c.AuthMark(ctx)
	return m.Enabled, m.Revision, err
}

// AuthMark is where a cluster's auth store stands: the cluster's ID and its
// auth revision, which etcd bumps, through raft, on every change to a user,
// a password, a role or a permission, and when authentication is disabled.
// While the mark stays the same, no password has changed.
type AuthMark struct {
	ClusterID uint64
	Revision  uint64
	Enabled   bool
}

// AuthMark reads the mark with one AuthStatus request (etcd 3.5 and later;
// etcd 3.4 answers Unimplemented, an error here). The request goes through
// raft, so the mark is current.
func (c *Client) AuthMark(ctx context.Context) (AuthMark, error) {
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	resp, err := c.AuthStatus(ctx)
	if err != nil {
		return AuthMark{}, c.Describe(err, "read the authentication status", "")
	}
	m := AuthMark{Revision: resp.AuthRevision, Enabled: resp.Enabled}
	if resp.Header != nil {
		m.ClusterID = resp.Header.ClusterId
	}
	return m, nil
}

// AuthNotReadyError says why enabling authentication now would lock someone
// out, and what to create first.
type AuthNotReadyError struct {
	// NoRootUser: there is no user root.
	NoRootUser bool
	// RootLacksRole: user root exists without the root role.
	RootLacksRole bool
	// NoIdentity: the provider connects with neither a user name nor a
	// client certificate, so it could do nothing once auth is on.
	NoIdentity bool
	// Identity is the provider's user when it lacks the root role.
	Identity string
}

func (e *AuthNotReadyError) Error() string {
	switch {
	case e.NoRootUser:
		return `no user "root" exists; etcd requires a user "root" holding the role "root" before authentication is enabled`
	case e.RootLacksRole:
		return `user "root" does not hold the role "root"; etcd requires it before authentication is enabled`
	case e.NoIdentity:
		return "the provider connects without a user name or client certificate, so once authentication is enabled it could neither manage the cluster nor disable authentication again"
	}
	return fmt.Sprintf("the provider connects as user %q, which does not hold the role \"root\", so once authentication is enabled it could not manage users and roles nor disable authentication again", e.Identity)
}

func (e *AuthNotReadyError) Unwrap() error { return ErrAuthNotReady }

// CheckAuthPrerequisites verifies, while authentication is still disabled,
// that enabling it cannot lock anyone out: user root exists with role root,
// and identity (the user the provider will be once auth is on, see
// Settings.Identity) holds the root role. It returns an *AuthNotReadyError
// when not. etcd cannot check a password before authentication is enabled.
func (c *Client) CheckAuthPrerequisites(ctx context.Context, identity string) error {
	roles, err := c.GetUser(ctx, RootName)
	switch {
	case errors.Is(err, ErrUserNotFound):
		return &AuthNotReadyError{NoRootUser: true}
	case err != nil:
		return err
	case !slices.Contains(roles, RootName):
		return &AuthNotReadyError{RootLacksRole: true}
	}
	if identity == "" {
		return &AuthNotReadyError{NoIdentity: true}
	}
	if identity == RootName {
		return nil
	}
	roles, err = c.GetUser(ctx, identity)
	switch {
	case errors.Is(err, ErrUserNotFound):
		return &AuthNotReadyError{Identity: identity}
	case err != nil:
		return err
	case !slices.Contains(roles, RootName):
		return &AuthNotReadyError{Identity: identity}
	}
	return nil
}

// EnableAuth checks the prerequisites (CheckAuthPrerequisites), enables
// authentication, then makes one request that needs the root role as the
// provider, so that credentials the cluster rejects are reported at once.
// Enabling when authentication is already on is a no-op.
func (c *Client) EnableAuth(ctx context.Context, identity string) error {
	if err := c.CheckAuthPrerequisites(ctx, identity); err != nil {
		return err
	}
	rctx, cancel := c.Ctx(ctx)
	_, err := c.AuthEnable(rctx)
	cancel()
	switch {
	case isRPC(err, rpctypes.ErrRootUserNotExist):
		return &AuthNotReadyError{NoRootUser: true}
	case isRPC(err, rpctypes.ErrRootRoleNotExist):
		return &AuthNotReadyError{RootLacksRole: true}
	case err != nil:
		return c.Describe(err, "enable authentication", "")
	}
	// clientv3 authenticates again on its own when the server first asks
	// for a token; this request makes that happen now.
	if _, err := c.GetUser(ctx, identity); err != nil {
		return fmt.Errorf("%w: %w; fix the provider's username/password or client certificate, or disable "+
			"authentication with `etcdctl --user root auth disable`", ErrEnabledButRejected, err)
	}
	return nil
}

// DisableAuth turns authentication off; it needs the root role. Disabling
// when it is already off is a no-op.
func (c *Client) DisableAuth(ctx context.Context) error {
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	if _, err := c.AuthDisable(ctx); err != nil {
		return c.Describe(err, "disable authentication", "")
	}
	return nil
}

// Identity is the etcd user the provider acts as once authentication is
// enabled: the user name when set (etcd then uses the password), otherwise
// the common name of the client certificate (etcd's client certificate
// authentication), otherwise "".
func (s *Settings) Identity() string {
	if s.Username != "" {
		return s.Username
	}
	return s.certUser()
}

// certUser is the common name of the client certificate, or "".
func (s *Settings) certUser() string {
	if s.TLS == nil || s.TLS.Certificate == nil || len(s.TLS.Certificate.Certificate) == 0 {
		return ""
	}
	leaf := s.TLS.Certificate.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(s.TLS.Certificate.Certificate[0]); err != nil {
			return ""
		}
	}
	return leaf.Subject.CommonName
}

// ValidName checks a user or role name the way etcd's tools expect: not
// empty, valid UTF-8, no control characters and no surrounding spaces.
func ValidName(kind, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("the %s name is empty", kind)
	case !utf8.ValidString(name):
		return fmt.Errorf("the %s name %q is not valid UTF-8", kind, name)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("the %s name %q has leading or trailing spaces", kind, name)
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("the %s name %q contains control characters", kind, name)
	}
	return nil
}

// isRPC tells whether err is the client-side form of the etcd error want
// (an rpctypes.Err... value).
func isRPC(err, want error) bool {
	if err == nil {
		return false
	}
	return errors.Is(err, want) || errors.Is(rpctypes.Error(err), want)
}
