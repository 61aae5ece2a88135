package maintenance

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

// Done is a defragmentation Run made.
type Done struct {
	Member Member
	// Before and After are the member's db_size around the
	// defragmentation.
	Before, After int64
	// Disarmed tells whether Run disarmed the member's NOSPACE alarm.
	Disarmed bool
}

func (d Done) String() string {
	s := fmt.Sprintf("defragmented %s: %s → %s", d.Member.Label(), FormatBytes(d.Before), FormatBytes(d.After))
	if d.Disarmed {
		s += ", NOSPACE alarm disarmed"
	}
	return s
}

// Result is what Run did and left alone.
type Result struct {
	Done    []Done
	Skipped []Skip
}

// healthyWait bounds the wait for a member to answer again after its
// defragmentation returned.
const healthyWait = 2 * time.Minute

// Run defragments, one at a time, the members that Plan picks under p
// and, when only is not nil, that only holds: what a plan showed. Before
// each member it measures the cluster again, so that leadership that moved
// or a member that went down in between is taken into account: the leader
// always goes last, and a member whose defragmentation would put the quorum
// at risk is skipped. After each defragmentation it waits until the member
// answers, and disarms the member's NOSPACE alarm if p says so and space
// was freed. It stops at the first error, returning what it did so far.
func Run(ctx context.Context, cl *client.Client, p Policy, only map[uint64]bool) (Result, error) {
	var res Result
	done := map[uint64]bool{}
	skipped := map[uint64]bool{}
	for {
		// Every member a plan named is done or skipped: nothing is left
		// to measure for.
		if only != nil && !slices.ContainsFunc(slices.Collect(maps.Keys(only)), func(id uint64) bool {
			return only[id] && !done[id] && !skipped[id]
		}) {
			return res, nil
		}
		s, err := Measure(ctx, cl)
		if err != nil {
			return res, err
		}
		todo, skips := p.Plan(s)
		for _, sk := range skips {
			if !done[sk.Member.ID] && !skipped[sk.Member.ID] && (only == nil || only[sk.Member.ID]) {
				skipped[sk.Member.ID] = true
				res.Skipped = append(res.Skipped, sk)
			}
		}
		var next *Defrag
		for i := range todo {
			id := todo[i].Member.ID
			if !done[id] && !skipped[id] && (only == nil || only[id]) {
				next = &todo[i]
				break
			}
		}
		if next == nil {
			return res, nil
		}
		d, err := defragment(ctx, cl, p, next.Member)
		if err != nil {
			return res, err
		}
		done[d.Member.ID] = true
		res.Done = append(res.Done, d)
	}
}

// defragment defragments m, waits until it answers again and disarms its
// NOSPACE alarm when p says so and space was freed.
func defragment(ctx context.Context, cl *client.Client, p Policy, m Member) (Done, error) {
	d := Done{Member: m, Before: m.DBSize}
	// A defragmentation takes as long as rewriting the database: it is
	// bounded by ctx (the apply's timeout), not by the request timeout.
	if _, err := cl.Defragment(ctx, m.ClientURL); err != nil {
		return d, cl.Describe(err, "defragment "+m.Label()+" at "+m.ClientURL, "")
	}
	wctx, cancel := context.WithTimeout(ctx, healthyWait)
	defer cancel()
	var after client.EndpointStatus
	for {
		after = cl.Status(wctx, []string{m.ClientURL})[0]
		if after.Err == nil {
			break
		}
		select {
		case <-wctx.Done():
			return d, fmt.Errorf("%s was defragmented but does not answer: %w", m.Label(), after.Err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	d.After = after.DBSize
	if p.DisarmNoSpace && d.After < d.Before && (m.hasAlarm(pb.AlarmType_NOSPACE.String()) || slices.Contains(after.Alarms, pb.AlarmType_NOSPACE.String())) {
		rctx, cancel := cl.Ctx(ctx)
		_, err := cl.AlarmDisarm(rctx, &clientv3.AlarmMember{MemberID: m.ID, Alarm: pb.AlarmType_NOSPACE})
		cancel()
		if err != nil {
			return d, cl.Describe(err, "disarm the NOSPACE alarm of "+m.Label(), "")
		}
		d.Disarmed = true
	}
	return d, nil
}
