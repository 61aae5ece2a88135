package recipes_test

// The fault-injection suite of Group. Four workers join names (each its
// own two names), leave them, or crash with them (their session is
// orphaned: no Leave, no revoke), while chaos injects faults. A Watch
// follows the group all along. The checks:
//
//   - a member that crashed leaves when its lease ends: once etcd reports
//     the crashed session's lease gone, no linearizable Members view
//     lists a member of it (the time from crash to leave is reported);
//   - no view ever lists a name twice: Members views, and the Watch's
//     view (a join of a name it holds, or a leave of one it does not, is
//     a violation);
//   - at the end, when every session has ended, both views are empty.
//
// Short mode runs ~12 s; RECIPES_LONG=1 runs until 10,000 joins and
// leaves, and at least chaos.LongAtLeast.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/recipes/internal/chaos"
)

func TestFaultsGroup(t *testing.T) {
	env := chaos.Start(t, "group", chaos.AllFaults...)
	var target int64
	if chaos.Long() {
		target = 10_000
		env.SetDuration(20 * time.Minute)
	}
	const prefix = "chaos-group"
	ctx := env.Context()
	direct := env.Cluster.Client()
	g, err := recipes.NewGroup(direct, prefix)
	if err != nil {
		t.Fatal(err)
	}

	// The Watch's view, on a client pinned to a member's proxy.
	wg0, err := recipes.NewGroup(env.Worker(0).Client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	events, err := wg0.Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	var vmu sync.Mutex
	view := map[string]recipes.Member{}
	var watched atomic.Int64
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for ev := range events {
			watched.Add(1)
			vmu.Lock()
			_, had := view[ev.Member.Name]
			switch ev.Type {
			case recipes.MemberJoined:
				if had {
					env.Violation("watch: %s joined while listed", ev.Member.Name)
				}
				view[ev.Member.Name] = ev.Member
			case recipes.MemberUpdated:
				if !had {
					env.Violation("watch: update of %s, not listed", ev.Member.Name)
				}
				view[ev.Member.Name] = ev.Member
			case recipes.MemberLeft:
				if !had {
					env.Violation("watch: %s left, not listed", ev.Member.Name)
				}
				delete(view, ev.Member.Name)
			}
			vmu.Unlock()
		}
	}()

	stop := env.InjectFaults()
	var joins, leaves, crashes, views atomic.Int64
	var maxLeave atomic.Int64 // ns from a crash to the end of its lease
	var checks sync.WaitGroup
	// checkCrash waits until etcd reports the crashed lease gone, then
	// checks that no member of it is listed.
	checkCrash := func(lease clientv3.LeaseID, at time.Time) {
		defer checks.Done()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			ttl, err := direct.TimeToLive(cctx, lease)
			if err != nil || ttl.TTL != -1 {
				cancel()
				continue
			}
			d := time.Since(at)
			for {
				old := maxLeave.Load()
				if int64(d) <= old || maxLeave.CompareAndSwap(old, int64(d)) {
					break
				}
			}
			ms, rev, err := g.Members(cctx)
			cancel()
			if err != nil {
				continue
			}
			for _, m := range ms {
				if m.Lease == int64(lease) {
					env.Violation("member %s of lease %x, gone, still listed at revision %d", m.Name, int64(lease), rev)
				}
			}
			return
		}
		env.Violation("lease %x of a crashed member not gone a minute after the crash", int64(lease))
	}

	done := func() bool { return ctx.Err() != nil || env.Reached(joins.Load()+leaves.Load(), target) }
	var workers sync.WaitGroup
	for i := range 4 {
		w := env.Worker(i)
		workers.Add(1)
		go func() {
			defer workers.Done()
			defer w.Close()
			for !done() {
				s := w.Session(ctx)
				if s == nil {
					return
				}
				name := fmt.Sprintf("10.0.%d.%d:80", i, env.Intn(2))
				jctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				m, err := g.Join(jctx, s, name, map[string]int{"worker": i})
				cancel()
				if err != nil {
					continue // held by a session of ours that has not ended yet, or a fault
				}
				joins.Add(1)
				env.Op()
				switch env.Intn(4) {
				case 0: // crash
					s.Orphan()
					crashes.Add(1)
					checks.Add(1)
					go checkCrash(s.Lease(), time.Now())
				case 1, 2:
					lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
					if ok, err := m.Leave(lctx); err == nil && ok {
						leaves.Add(1)
						env.Op()
					}
					cancel()
				}
			}
		}()
	}
	// Linearizable views: never a name twice.
	workers.Add(1)
	go func() {
		defer workers.Done()
		for !done() {
			time.Sleep(20 * time.Millisecond) // paced: the machine is shared
			vctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			ms, rev, err := g.Members(vctx)
			cancel()
			if err != nil {
				continue
			}
			views.Add(1)
			seen := map[string]bool{}
			for _, m := range ms {
				if seen[m.Name] || m.Addr != m.Name {
					env.Violation("view at %d lists %s twice or with address %s", rev, m.Name, m.Addr)
				}
				seen[m.Name] = true
			}
		}
	}()
	workers.Wait()
	stop()
	checks.Wait()

	// Every session ended (closed, or orphaned and expired): both views
	// empty. The end marker makes sure the watch is past the last leave.
	ectx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		ms, _, err := g.Members(ectx)
		if err == nil && len(ms) == 0 {
			break
		}
		if ectx.Err() != nil {
			env.Violation("members left at the end: %+v", ms)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	end := env.Worker(7)
	endSession := end.Session(ectx)
	if _, err := g.Join(ectx, endSession, "end", nil); err != nil {
		t.Fatal(err)
	}
	for {
		vmu.Lock()
		_, ok := view["end"]
		n := len(view)
		vmu.Unlock()
		if ok {
			if n != 1 {
				env.Violation("watch view at the end holds %d members besides the marker", n-1)
			}
			break
		}
		if ectx.Err() != nil {
			env.Violation("watch never saw the end marker")
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopWatch()
	<-watchDone
	t.Logf("group: %d joins, %d leaves, %d crashes (longest from crash to lease end %v), %d views, %d watch events",
		joins.Load(), leaves.Load(), crashes.Load(), time.Duration(maxLeave.Load()).Round(time.Millisecond), views.Load(), watched.Load())
	if joins.Load() == 0 || crashes.Load() == 0 {
		t.Fatal("the workload joined or crashed nothing")
	}
}
