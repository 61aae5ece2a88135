package maintenance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// openClient opens the provider's client on c's endpoints.
func openClient(t testing.TB, c *testserver.Cluster) *client.Client {
	t.Helper()
	s, err := client.Config{
		Endpoints: c.Endpoints(),
		LookupEnv: func(string) (string, bool) { return "", false },
	}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.Open(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// fillUntilNoSpace writes 64 KiB values under /fill/ until etcd refuses a
// write with "database space exceeded", then waits for the NOSPACE alarm.
func fillUntilNoSpace(t *testing.T, ctx context.Context, cli *clientv3.Client) {
	t.Helper()
	for i := range 100 {
		if _, err := cli.Put(ctx, fmt.Sprintf("/pad/%d", i), "p"); err != nil {
			t.Fatal(err)
		}
	}
	value := strings.Repeat("x", 64<<10)
	full := false
	for i := 0; i < 1000 && !full; i++ {
		_, err := cli.Put(ctx, fmt.Sprintf("/fill/%d", i), value)
		switch {
		case errors.Is(err, rpctypes.ErrNoSpace):
			full = true
		case err != nil:
			t.Fatalf("put %d: %v", i, err)
		}
	}
	if !full {
		t.Fatal("1,000 puts of 64 KiB did not exceed the quota")
	}
	for len(noSpace(t, ctx, cli)) == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("no NOSPACE alarm after the quota was exceeded")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freeSpace deletes /fill/ and compacts to the current revision, leaving
// the members' databases mostly free pages.
func freeSpace(t *testing.T, ctx context.Context, cli *clientv3.Client) {
	t.Helper()
	resp, err := cli.Delete(ctx, "/fill/", clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("delete under NOSPACE: %v", err)
	}
	if _, err := cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compact: %v", err)
	}
}

// waitFragmented waits until every member's database is more than ratio
// free. A member reports the pages a compaction freed only from its second
// commit after the compaction (etcd computes db_size_in_use at a commit,
// and bbolt releases freed pages at the next one), and nothing commits
// while NOSPACE refuses writes: each round deletes one key (deletes are
// allowed) to make every member commit.
func waitFragmented(t *testing.T, ctx context.Context, cl *client.Client, ratio float64) Survey {
	t.Helper()
	for i := 0; ; i++ {
		s, err := Measure(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		ok := true
		for _, m := range s.Members {
			ok = ok && m.Err == nil && m.FreeRatio() > ratio
		}
		if ok {
			return s
		}
		if _, err := cl.Delete(ctx, fmt.Sprintf("/pad/%d", i)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the members' databases did not become %.0f%% free: %+v", ratio*100, s)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func noSpace(t *testing.T, ctx context.Context, cli *clientv3.Client) map[uint64]bool {
	t.Helper()
	resp, err := cli.AlarmList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[uint64]bool{}
	for _, a := range resp.Alarms {
		if a.Alarm == pb.AlarmType_NOSPACE {
			ids[a.MemberID] = true
		}
	}
	return ids
}

// fragment writes, deletes and compacts away 1 MiB, then writes small keys until every
// member reports more than 256 KiB free (see waitFragmented).
func fragment(t *testing.T, ctx context.Context, c *testserver.Cluster) {
	t.Helper()
	cli := c.Client()
	for i := range 64 {
		if _, err := cli.Put(ctx, fmt.Sprintf("/k/%d", i), strings.Repeat("y", 16<<10)); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := cli.Delete(ctx, "/k/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	cl := openClient(t, c)
	for i := 0; ; i++ {
		s, err := Measure(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		ok := true
		for _, m := range s.Members {
			ok = ok && m.Err == nil && m.Free() > 256<<10
		}
		if ok {
			return
		}
		if _, err := cli.Put(ctx, "/tick", strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the members' databases did not free 256 KiB: %+v", s)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkNoOverlap fails the test if two defragmentations overlapped.
func checkNoOverlap(t *testing.T, defrags []testserver.Defragmentation) {
	t.Helper()
	sorted := slices.Clone(defrags)
	slices.SortFunc(sorted, func(a, b testserver.Defragmentation) int { return a.Start.Compare(b.Start) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Start.Before(sorted[i-1].End) {
			t.Errorf("defragmentation of %s started at %s, before that of %s ended at %s",
				sorted[i].Member, sorted[i].Start.Format(time.StampMicro), sorted[i-1].Member, sorted[i-1].End.Format(time.StampMicro))
		}
	}
}

// A cluster that raised NOSPACE, then had its data deleted and compacted,
// is defragmented member by member, leader last, and its alarms are
// disarmed: writes succeed again.
func TestRunDefragmentsAndDisarms(t *testing.T) {
	c := testserver.Start(t, testserver.WithMembers(3), testserver.WithQuotaBackendBytes(1<<20))
	ctx := testCtx(t)
	cli := c.Client()
	fillUntilNoSpace(t, ctx, cli)
	alarmed := noSpace(t, ctx, cli)
	freeSpace(t, ctx, cli)
	if _, err := cli.Put(ctx, "/after", "x"); !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Fatalf("put before the maintenance: %v, want %v", err, rpctypes.ErrNoSpace)
	}

	cl := openClient(t, c)
	p := Policy{FreeRatio: 0.3, DisarmNoSpace: true}
	s := waitFragmented(t, ctx, cl, 0.5)
	todo, skipped := p.Plan(s)
	if len(todo) != 3 || len(skipped) != 0 {
		t.Fatalf("plan: %v, skipped %v; want all 3 members; survey %+v", todo, skipped, s)
	}
	for _, d := range todo {
		if !strings.HasPrefix(d.String(), "defragment "+d.Member.Name+" (ID ") || !strings.Contains(d.String(), "% free: ") {
			t.Errorf("plan entry %q", d)
		}
	}

	res, err := Run(ctx, cl, p, nil)
	if err != nil {
		t.Fatalf("run: %v (done %v)", err, res.Done)
	}
	if len(res.Done) != 3 || len(res.Skipped) != 0 {
		t.Fatalf("done %v, skipped %v; want 3 defragmentations", res.Done, res.Skipped)
	}
	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if last := res.Done[2].Member; last.ID != leader.ID || !last.IsLeader {
		t.Errorf("last defragmented %s (leader when measured: %t); the leader is %s", last.Label(), last.IsLeader, leader.Name)
	}
	for _, d := range res.Done {
		if d.After >= d.Before {
			t.Errorf("%s: db_size %d before, %d after", d.Member.Label(), d.Before, d.After)
		}
		// A member may raise its alarm after alarmed was read; none that
		// had it may keep it.
		if alarmed[d.Member.ID] && !d.Disarmed {
			t.Errorf("%s had a NOSPACE alarm, and it was not disarmed", d.Member.Label())
		}
	}
	if left := noSpace(t, ctx, cli); len(left) != 0 {
		t.Errorf("NOSPACE alarms left: %v", left)
	}
	if _, err := cli.Put(ctx, "/after", "x"); err != nil {
		t.Errorf("put after the maintenance: %v", err)
	}

	defrags := c.Defragmentations()
	if len(defrags) != 3 {
		t.Fatalf("the members served %d defragmentations, want 3: %v", len(defrags), defrags)
	}
	seen := map[string]bool{}
	for _, d := range defrags {
		if d.Err != nil || seen[d.Member] {
			t.Errorf("defragmentation %+v (seen before: %t)", d, seen[d.Member])
		}
		seen[d.Member] = true
	}
	checkNoOverlap(t, defrags)

	// Nothing is left to do.
	again, err := Run(ctx, cl, p, nil)
	if err != nil || len(again.Done) != 0 {
		t.Errorf("second run: done %v, err %v; want nothing", again.Done, err)
	}
}

// With a member down, a 3-member cluster cannot afford a busy member: the
// down member and the others are skipped with a reason, and nothing is
// defragmented.
func TestRunSkipsWhenQuorumAtRisk(t *testing.T) {
	c := testserver.Start(t, testserver.WithMembers(3))
	ctx := testCtx(t)
	fragment(t, ctx, c)
	down := c.Members()[0]
	if err := c.StopMember(ctx, down.Name); err != nil {
		t.Fatal(err)
	}
	cl := openClient(t, c)
	// Any free byte is over this threshold: only the quorum holds it back.
	p := Policy{FreeBytes: 1}
	res, err := Run(ctx, cl, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Done) != 0 {
		t.Errorf("defragmented %v with %s down", res.Done, down.Name)
	}
	if len(res.Skipped) != 3 {
		t.Fatalf("skipped %v, want all 3 members", res.Skipped)
	}
	for _, sk := range res.Skipped {
		want := "the quorum is 2"
		if sk.Member.ID == down.ID {
			want = "cannot be measured"
		}
		if !strings.Contains(sk.String(), want) {
			t.Errorf("skip %q does not say %q", sk, want)
		}
	}
	if d := c.Defragmentations(); len(d) != 0 {
		t.Errorf("the members served defragmentations: %v", d)
	}
}

// Run defragments only the members a plan named.
func TestRunOnlyPlanned(t *testing.T) {
	c := testserver.Start(t, testserver.WithMembers(3))
	ctx := testCtx(t)
	fragment(t, ctx, c)
	cl := openClient(t, c)
	one := c.Members()[1]
	res, err := Run(ctx, cl, Policy{FreeBytes: 1}, map[uint64]bool{one.ID: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Done) != 1 || res.Done[0].Member.ID != one.ID {
		t.Fatalf("done %v, want only %s", res.Done, one.Name)
	}
	if d := c.Defragmentations(); len(d) != 1 || d[0].Member != one.Name {
		t.Errorf("the members served %v, want one defragmentation of %s", d, one.Name)
	}
}

func TestPlanOrder(t *testing.T) {
	s := Survey{Members: []Member{
		{ID: 1, Name: "a", IsLeader: true, DBSize: 100 << 20, DBSizeInUse: 10 << 20},
		{ID: 2, Name: "b", DBSize: 100 << 20, DBSizeInUse: 10 << 20},
		{ID: 3, Name: "c", DBSize: 100 << 20, DBSizeInUse: 90 << 20},
		{ID: 4, Name: "d", IsLearner: true, DBSize: 100 << 20, DBSizeInUse: 10 << 20},
		{ID: 5, Name: "e", DBSize: 100 << 20, DBSizeInUse: 50 << 20},
	}}
	todo, skipped := Policy{FreeRatio: 0.3}.Plan(s)
	var got []string
	for _, d := range todo {
		got = append(got, d.Member.Name)
	}
	if want := []string{"d", "b", "e", "a"}; !slices.Equal(got, want) || len(skipped) != 0 {
		t.Errorf("order %v (skipped %v), want %v", got, skipped, want)
	}
	if todo[1].Why != "90% free: 90.0 MiB of 100.0 MiB" {
		t.Errorf("why %q", todo[1].Why)
	}
	// The byte threshold alone: c's 10 MiB free are not over 10 MiB.
	todo, _ = Policy{FreeBytes: 10 << 20}.Plan(s)
	if len(todo) != 4 {
		t.Errorf("bytes threshold: %v", todo)
	}
	// A percentage alone leaves a member with under MinFreeForRatio free.
	tiny := Survey{Members: []Member{{ID: 6, Name: "f", DBSize: 36 << 10, DBSizeInUse: 16 << 10}}}
	if todo, _ := (Policy{FreeRatio: 0.3}).Plan(tiny); len(todo) != 0 {
		t.Errorf("a 36 KiB database, 55%% free, was planned: %v", todo)
	}
	if todo, _ := (Policy{}).Plan(s); len(todo) != 0 {
		t.Errorf("no threshold: %v", todo)
	}
}

func TestParsePercent(t *testing.T) {
	for in, want := range map[string]float64{"30%": 0.3, " 12.5 %": 0.125, "0.5%": 0.005} {
		if got, err := ParsePercent(in); err != nil || got != want {
			t.Errorf("ParsePercent(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"30": "with a % sign", "0%": "out of range", "100%": "out of range", "-5%": "out of range",
		"abc%": "not a percentage", "NaN%": "not a percentage", "": "with a % sign",
	} {
		_, err := ParsePercent(in)
		if !errors.Is(err, ErrInvalidThreshold) || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParsePercent(%q): %v, want %q", in, err, msg)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"512MiB": 512 << 20, "1.5GiB": 3 << 29, "100MB": 100e6, "1048576": 1 << 20, "2 kib": 2048, "7B": 7,
	} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"0MiB": "out of range", "-5MiB": "out of range", "12XB": "unknown unit", "MiB": "not a size",
		"2048TiB": "out of range", "1.2.3MiB": "not a size", "": "not a size",
	} {
		_, err := ParseBytes(in)
		if !errors.Is(err, ErrInvalidThreshold) || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseBytes(%q): %v, want %q", in, err, msg)
		}
	}
	if got := FormatBytes(3<<20 + 1<<19); got != "3.5 MiB" {
		t.Errorf("FormatBytes = %q", got)
	}
}
