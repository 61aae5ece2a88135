package provider

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/json"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

// The refresh of an etcd_user with a password in state checks that etcd
// still accepts it by authenticating as the user, which costs the member one
// bcrypt comparison (tens of milliseconds of CPU at etcd's default cost):
// for 1,000 users, about a minute of the cluster's CPU in every plan. etcd
// bumps its auth revision, through raft, on every change to a user, a
// password, a role or a permission, so while the revision stays where it was
// when etcd last accepted the password, the password cannot have changed.
// The refresh then reads the revision (one AuthStatus request, no bcrypt)
// and skips the authentication. Any auth change anywhere in the cluster
// (including the applies that create users) moves the revision, and the
// refreshes after it check every password again, until one is saved: a
// plan's refresh is not, an apply's (or apply -refresh-only's) is. So a
// configuration that no apply changed for a while plans without bcrypt.
//
// The record is kept in private state, bound to the cluster's ID (another
// cluster, or one restored with a new token, checks again) and to an
// HMAC of the password, keyed by a random salt, so that a state whose
// password changed without an apply is checked as well. etcd 3.4 has no
// AuthStatus, so there every refresh authenticates, as before.
//
// The limit: a snapshot restored by hand with the cluster's old token and
// peer URLs keeps the cluster's ID and goes back to the snapshot's auth
// revision; if exactly as many auth changes follow as the record missed,
// the revision matches again. The same holds for a recovery from a member
// that had not applied the last auth changes (force-new-cluster keeps the
// ID). etcd_cluster's restore, and its recovery from a snapshot, use a new
// token, so their clusters get a new ID and every password is checked
// again.

// privatePasswordCheck is the private state key of the passwordCheck.
const privatePasswordCheck = "password_check"

// passwordCheck records that etcd accepted a password at a cluster's auth
// mark.
type passwordCheck struct {
	ClusterID    uint64 `json:"cluster_id"`
	AuthRevision uint64 `json:"auth_revision"`
	Salt         []byte `json:"salt"`
	MAC          []byte `json:"mac"`
}

// covers tells whether the record proves that password is still the user's
// at mark.
func (p *passwordCheck) covers(mark client.AuthMark, password string) bool {
	return p != nil && mark.Enabled && mark.ClusterID != 0 && p.ClusterID == mark.ClusterID &&
		p.AuthRevision == mark.Revision && len(p.Salt) == woSaltBytes && hmac.Equal(p.MAC, saltedMAC(p.Salt, []byte(password)))
}

// getPasswordCheck reads the record; nil when there is none or it cannot be
// read (it is only a shortcut: without it, the password is checked).
func getPasswordCheck(ctx context.Context, p privateGetter) *passwordCheck {
	if p == nil {
		return nil
	}
	b, diags := p.GetKey(ctx, privatePasswordCheck)
	if diags.HasError() || len(b) == 0 {
		return nil
	}
	var rec passwordCheck
	if json.Unmarshal(b, &rec) != nil {
		return nil
	}
	return &rec
}

// checkUserPassword is the refresh's password check of user: skipped when
// the record covers the cluster's current auth mark, otherwise one
// authentication as the user, after which the record is renewed (accepted)
// or removed. The mark is read before authenticating, so a change between
// the two leaves a record that the next refresh no longer trusts.
func checkUserPassword(ctx context.Context, cl *client.Client, user, password string, prior privateGetter,
	out privateSetter) (client.PasswordCheck, diag.Diagnostics, error) {
	mark, markErr := cl.AuthMark(ctx)
	if markErr == nil && !mark.Enabled {
		// etcd cannot check passwords with authentication off.
		return client.PasswordUnchecked, out.SetKey(ctx, privatePasswordCheck, nil), nil
	}
	if markErr == nil && getPasswordCheck(ctx, prior).covers(mark, password) {
		tflog.Debug(ctx, "password check skipped: the auth revision has not moved since etcd accepted it",
			map[string]any{"user": user, "auth_revision": mark.Revision})
		return client.PasswordMatches, nil, nil
	}
	res, err := cl.CheckPassword(ctx, user, password)
	if err != nil || res != client.PasswordMatches || markErr != nil || mark.ClusterID == 0 {
		return res, out.SetKey(ctx, privatePasswordCheck, nil), err
	}
	rec := passwordCheck{ClusterID: mark.ClusterID, AuthRevision: mark.Revision, Salt: make([]byte, woSaltBytes)}
	_, _ = rand.Read(rec.Salt) // never returns an error: since Go 1.24 a failure crashes the program
	rec.MAC = saltedMAC(rec.Salt, []byte(password))
	b, _ := json.Marshal(rec) // plain fields: cannot fail
	return res, out.SetKey(ctx, privatePasswordCheck, b), nil
}
