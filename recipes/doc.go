// Package recipes provides distributed locks, elections, queues and
// barriers on etcd that stay safe when sessions expire, members die and
// the network splits.
//
// Every primitive is built on clientv3. Locks, elections, queue consumers
// and barriers also take a concurrency.Session: the keys they write for a
// holder, waiter, claim or participant are attached to the session's
// lease, so they disappear when the session's process dies. Queue items
// are plain keys that outlive their producers. Every blocking call takes a
// context first, and every error is a sentinel of this package (or a
// context error) or wraps one, so errors.Is works.
//
// # The fencing model
//
// A lock held in etcd is not mutual exclusion by itself. A holder can be
// paused (GC, swapping, a stopped VM) or cut off from the network for
// longer than its session's TTL; etcd then expires the lease, deletes the
// key and hands the lock to the next waiter, while the old holder still
// believes it holds the lock and keeps writing. No client-side check can
// close that gap, because the pause can happen right after the check.
//
// The only safe way to act under a lock is to make the storage reject the
// stale holder. Every held lock and every leadership of this package is
// identified by its fencing token:
//
//   - Token() is the create revision of the holder's key in etcd. It is
//     unique, and it grows from one holder to the next: a later holder of
//     the same Mutex, of the write side of an RWMutex, or of the leadership
//     of an Election always has a larger token.
//   - Guard() is the clientv3.Cmp "CreateRevision(key) == Token()". Put it
//     in the If of the holder's own etcd transactions: they succeed while
//     the lock is held and fail, atomically, from the revision at which it
//     was lost (lease expired or revoked, key deleted, or released).
//   - Done() is closed as soon as the holder can know it lost the lock: a
//     watch on the holder's key reports its deletion (which is what lease
//     expiry and revocation do), and the session's own keep-alive ending
//     closes it too. Err() then tells why, as a *LossError carrying the
//     revision of the loss. A connected client hears of a deletion within
//     milliseconds; a client cut off or paused hears nothing until it
//     reconnects or its keep-alive gives up, about a TTL later (1.5-3 s
//     after a revoke with a 2 s TTL, under the fault suite's faults). Done
//     is a notice, not a guarantee: only Guard() is.
//
// For writes outside etcd, pass Token() to the other system and have it
// reject any token lower than the highest it has seen.
//
// # Stopping in time
//
// Much of what a holder protects is not an etcd write: a cron job, a
// migration, a call to a service that takes no token. For that work the
// holder must stop before anyone else can start, and Done cannot promise
// that: in a partition the deletion never reaches the holder, and etcd
// expires a lease TTL after the last renewal it received, which can be
// before the client's keep-alive gives up.
//
// A [Session] (NewSession, same options as concurrency.NewSession, plus
// WithSafetyMargin and WithSessionClock) sends its own keep-alives and
// records when each was sent and when etcd acknowledged it. etcd received
// an acknowledged keep-alive no earlier than it was sent, so the lease
// lives at least until its send time plus the TTL. Give s.Concurrency()
// to the primitives; then Context() of every Lock, Leadership and Claim
// ends at the earliest of
//
//   - the grant seen lost (context.Cause is a *LossError wrapping
//     ErrLockLost, ErrLeadershipLost or ErrClaimLost),
//   - its Unlock, Resign, Ack or Nack (a cause wrapping ErrNotHeld),
//   - the local deadline: send time of the last acknowledged keep-alive,
//     plus the TTL, minus the safety margin (cause ErrLeaseDeadline).
//
// The margin (default a third of the TTL) must cover how much slower this
// process's clock may run than that of etcd's leader over one TTL, and the
// longest pause between checking the context and acting on it. With the
// defaults (keep-alives every third of the TTL, margin a third of the TTL)
// one keep-alive may go unanswered before the deadline ends the context.
// After the deadline, the lease may still be alive (a later acknowledgment
// proves it, and later grants get a new deadline), but the grants made
// before it are not trusted again: take them anew. With a plain
// concurrency.Session, Context ends on loss and release only.
//
// [Lead] builds a leader loop on it, like client-go's leader election: it
// runs a function under the leadership's Context, waits for it to return
// when that context ends (reporting a stuck one with ErrLeaderStuck
// instead of campaigning again), and resigns at once when its own context
// ends, so a rolling deploy hands over in about one etcd write.
//
// Stopping in time is a promise about clocks and pauses; fencing is one
// about etcd. Use both: stop on Context, and guard every write.
//
// # Using Guard
//
//	l, err := recipes.NewMutex(session, "/locks/orders").Lock(ctx)
//	if err != nil {
//		return err
//	}
//	defer l.Unlock(context.WithoutCancel(ctx))
//	resp, err := client.Txn(ctx).
//		If(l.Guard()).
//		Then(clientv3.OpPut("/orders/next", "42")).
//		Commit()
//	if err != nil {
//		return err
//	}
//	if !resp.Succeeded {
//		return recipes.ErrLockLost // nothing was written
//	}
//
// Unlock is fenced the same way: it deletes the key only if its create
// revision is still the token, so a retried or delayed Unlock can never
// delete the key of a newer holder (etcd #22082).
//
// A guarded write can be applied twice within one hold. clientv3 sends a
// Txn again when a stopping member answers Canceled, although the first
// attempt may have been applied; the resend passes the Guard too, since the
// lock is still held, and a resent Txn can even report Succeeded=false
// after its first attempt was applied (its own write changed what its If
// compares). A retry by the caller after an unknown outcome does the same.
// Fencing still holds, but a counter incremented under Guard() counts
// twice. Write what must not be applied twice with [FencedTxn]: it adds a
// marker key unique to the write, so any second arrival changes nothing,
// and it tells "applied", "applied before" (by an earlier attempt, once)
// and "not applied" apart:
//
//	out, _, err := recipes.FencedTxn(session, "/markers").
//		If(l.Guard()).
//		Then(clientv3.OpPut("/orders/next", "43")).
//		Commit(ctx)
//	// err != nil: unknown; Commit the same FencedWrite again.
//	// out == recipes.FencedNotApplied: the lock was lost, nothing written.
//
// Several locks at once: [LockAll] takes them in one global order (in one
// transaction when all are free) and returns one grant; put all of its
// Guard() in the If. [ResumeMutex], like ResumeElection, takes a lock back
// after a restart on the same lease.
//
// # Keys, sessions and prefixes
//
// A Mutex, RWMutex, Semaphore or Election on prefix "p" keeps one key per
// waiting or holding session under "p/" (the prefix is normalized to end in
// exactly one "/", also by ResumeElection), named after the session's
// lease: "p/<lease hex>" ("p/r/..." and "p/w/..." for an RWMutex). The
// holder is the oldest key (lowest create revision). One more key sits
// just outside the prefix: "p\x00released", where a Mutex, Election,
// writer of an RWMutex or one-slot Semaphore records, in the transaction
// of its release, the token it released; it is bound to the releasing
// session's lease. The waiter just behind reads it instead of the whole
// line. A role that grants only "p/" works too: after etcd refuses the
// record once to a client, that client releases without it and its
// waiters read the line; clients of other users keep recording. Within
// one process, two acquisitions by the same session of the same primitive
// queue behind each other; use one session per concurrent holder if they
// should compete as independent processes do. Do not nest the prefixes of
// different primitives ("jobs" and "jobs/x"): the outer one would see the
// inner one's keys. Queues and barriers also keep all their keys under
// their prefix; their type documentation gives the layout.
//
// Always end a grant with Unlock (or Resign): until it is released or seen
// lost, a later acquisition by the same session of the same primitive
// waits, as with sync.Mutex.
//
// # Waiting without the 100 ms tax
//
// etcd serves watches opened at a past revision from a loop that runs
// every 100 ms; watches opened at the current revision are fed directly
// from the write path. Waiters in this package always open their watch
// first, at the current revision, and only then read the state they wait
// on, so no change can slip between the read and the watch and every
// hand-off is delivered by a synced watch. A contended Mutex hands over in
// about the time of one etcd write instead of ~25 ms.
//
// # Sessions that expire while waiting
//
// A waiter's key is created with the session's lease in the same
// transaction that joins the queue, so a waiter whose lease is already gone
// fails at once with ErrSessionExpired. Later, the waiter watches the
// keys just ahead of it and its own key: if its own key disappears first
// (its lease expired), it fails; it is granted the lock only at a revision
// at which its own key still exists (etcd #19597). Observe reports every change of leader, including
// "no leader", and re-reads instead of closing when etcd compacted the
// history it needed.
//
// # Requests whose answer is lost
//
// clientv3 sends a request again when a member answers Canceled while the
// caller's context is live, as a stopping member does for the requests in
// flight, although the first may have been applied; a resend that lands
// after the failed call removed its key would put a lock's key back, held
// by nobody, until the session ends. This package sends every write that
// creates a key only once: such a call fails with an error wrapping
// ErrEtcd that says the outcome is unknown, and an acquisition (Lock,
// TryLock, RLock, Acquire, Campaign) removes its key (in the background if
// etcd does not answer at once), so it can simply be tried again.
//
// # Queues
//
// A [Queue] is a FIFO queue and a [PriorityQueue] hands out the lowest
// priority value first, FIFO within a priority. FIFO means the order in
// which the Enqueue calls committed in etcd: an Enqueue that returned
// before another started, on any client, is handed out first. Producers
// and Dequeue need only a client; an Enqueue is one write, and a Dequeue
// or a Claim usually one write too (it reads the head back in the same
// transaction, for the next call on the same Queue or Consumer value).
// Enqueue returns the [Item]'s key and create revision. If it fails with
// an etcd error, the item may or may not have been added, and trying again
// may add it twice; an Enqueue made [WithID] is a put-if-absent on a
// caller-chosen id, so a producer can send it again until it gets an
// answer without adding the item twice (within the queue's dedupe window,
// default 5 minutes).
//
// An Enqueue made [WithDelay] or [WithNotBefore] puts an item that no
// consumer hands out before that time (in the consumer's clock: keep the
// clocks in sync). It waits in its place in the queue and blocks nothing:
// ready items are handed out in the queue's order meanwhile, and once due
// it goes out in its place, not behind the items that were ready before
// it. A consumer blocked on a queue whose items all wait sets a timer for
// the earliest and wakes then (or on a new item), without polling. A
// delay below 0 or above MaxDelay is ErrInvalidDelay.
//
// [Queue.Dequeue] (and [PriorityQueue.Dequeue]) is at most once: the item
// is deleted by the transaction that hands it out, so no item is ever
// returned twice, but an item is lost if its consumer crashes before
// processing it, or if that transaction fails in a way that hides its
// outcome.
//
// A [Consumer] is at least once. [Consumer.Claim] marks the next free
// item with a claim key bound to the consumer's session, in the
// transaction that checks the item is still there and unclaimed; the item
// stays in place and other consumers (and Dequeue) skip it. [Claim.Ack]
// deletes the item and the claim together, [Claim.Nack] only the claim, and
// both fail with ErrClaimLost once the claim is gone. A claim is fenced
// like a lock: [Claim.Token] grows with every claim of an item, and
// [Claim.Guard] holds only while the claim does, so writes that record the
// item's processing should carry it. An item may be processed more than
// once; of all its claims at most one Ack succeeds. A Claim has Done, Err
// and Context like a Lock.
//
// The dedupe rule: a claim is identified by its Key and Token. When an Ack
// or Nack fails with an unknown outcome (an error wrapping ErrEtcd, not
// ErrClaimLost), the claim may still exist; the consumer's next Claim then
// finds it and hands it out again, with the same Key and Token. Treat
// such a Claim as the one already held (its processing may be done): Ack
// it again. A claim with the same Key and a larger Token is a new claim of
// the item, made after the old one was lost.
//
// A Consumer made [WithVisibilityTimeout] gives each claim a lease of its
// own: the claim expires after that time even if its consumer is alive but
// stuck, and [Claim.Extend] renews it. Expiry is a loss like any other:
// Guard, Ack and Nack of the expired claim fail, Done closes, and Context
// ends at the claim's local deadline already (see "Stopping in time").
//
// Batches carry up to [Queue.MaxBatch] items (etcd's max-txn-ops less
// 6: 122 by default) in one transaction, one etcd write for all of them.
// [Queue.EnqueueAll] adds all its items or none, at one revision and next
// to each other in the queue, in slice order. [Queue.DequeueN] and
// [Consumer.ClaimN] take up to n of the oldest free items their read of
// the head saw, each on its own (items other consumers took first are
// left out, so a batch may be short), and return them in queue order. Per
// item nothing changes: a DequeueN item is delivered at most once, a
// ClaimN claim is acked, nacked, fenced and lost on its own (with a
// visibility timeout the claims of one batch share a lease). A batch size
// outside 1..MaxBatch is ErrBatchSize.
//
// When a consumer's session ends (crash, or a pause longer than the TTL),
// its claim keys go with the lease and the items are handed out again from
// their original place in the queue; a Claim still waiting fails with
// ErrSessionExpired, Ack and Nack of its lost claims fail with
// ErrClaimLost, and writes guarded by their Guard fail.
//
// # Barriers
//
// A [Barrier] blocks Wait until Release. Hold binds the barrier to the
// holder's session; if that session ends without a Release, Wait fails
// with ErrBarrierAbandoned instead of letting its caller through early or
// blocking forever. A [DoubleBarrier] lets count participants Enter
// together and Leave together; each participant's key is bound to its
// session, so a participant whose session ends is no longer counted and
// nobody waits for it. In both, a waiter whose own session ends fails with
// ErrSessionExpired.
//
// # Caches, groups and counters
//
// A [Cache] is a consistent local mirror of a prefix: one linearizable
// read at revision R, then the watch's events from R+1, applied one
// revision at a time. Reads are served from memory and carry the revision
// they reflect, so the cache at revision r equals a linearizable Get of
// the prefix at r. [Cache.WaitForRevision] with the revision of one's own
// write gives read-your-writes. Handlers get adds, updates and deletes in
// revision order; a broken watch resumes at the next revision, and when
// that revision was compacted the cache reads the prefix again and
// delivers only the difference. etcd's mirror.Syncer gives no consistent
// view and stops at a compaction.
//
// A [Group] is membership bound to sessions: [Group.Join] writes
// "<target>/<name>" with the session's lease, in the JSON format of etcd's
// naming/endpoints, so a crashed member leaves when its lease ends and
// etcd's gRPC resolver can dial the group ("etcd:///<target>").
// [Group.Members] returns the view with its revision; [Group.Watch]
// follows it through a Cache.
//
// A [Counter] is an int64 in one key. Add and CompareAndSwap are
// compare-and-swap transactions whose failure branch reads the key, so
// they lose no update under contention and retry in one round trip. A key
// that holds something other than a number is ErrNotNumber. A
// [ShardedCounter] spreads a counter that many clients add to over n keys:
// each Add changes one shard picked at random, and Get sums all shards in
// one read, at one revision.
//
// # Writes that are sent once on a slow cluster
//
// A write that must not be sent twice (an Enqueue, a take, an Ack or
// Nack, a Counter update) has no fixed deadline of its own: while it has
// no answer, the package asks the cluster for a linearizable read every
// few seconds, and keeps waiting as long as the cluster answers. Only when
// the cluster answers nothing does the write fail, with an error wrapping
// ErrEtcd that says its outcome is unknown. A busy cluster is slow, not
// failed.
package recipes
