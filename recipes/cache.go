package recipes

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Cache is a consistent local mirror of the keys under a prefix, in the
// manner of client-go's informers or Curator's CuratorCache.
//
// It reads the whole prefix with one linearizable range at revision R and
// applies the watch's events from R+1 on, one revision at a time. Every
// read is served from memory and labelled with the revision it reflects:
// the cache at revision r holds exactly what a linearizable Get of the
// prefix at revision r returned. Reads never see half of a transaction.
//
// Handlers ([WithCacheHandler]) receive every change as a [CacheEvent], in
// revision order, each with its revision. The first read delivers every
// key as an add. When the watch breaks (a member restarts, a partition
// cuts the client's member off from the leader) the cache resumes from
// the revision after the last one it applied; when those revisions were
// compacted meanwhile, it reads the prefix again and delivers exactly the
// difference between what it held and what it read (adds, updates and
// deletes at the new read's revision), never a delete and add of a key
// that did not change.
//
// [Cache.Synced] reports whether the cache follows a live watch;
// [Cache.Revision] is the revision its contents reflect. A cache that
// applied nothing new for a while may lag behind a revision made outside
// its prefix: [Cache.WaitForRevision] asks etcd for a progress notice, so
// it returns as soon as the cache is known to be at or past the revision
// (read-your-writes after a Put, whose response carries that revision).
type Cache struct {
	client   *clientv3.Client
	prefix   string
	handlers []func(CacheEvent)

	mu      sync.RWMutex
	kvs     map[string]CachedKV
	rev     int64         // revision the contents reflect; 0 before the first read
	changed chan struct{} // closed and replaced whenever rev grows

	synced atomic.Bool
	cancel context.CancelFunc
	done   chan struct{}
}

// CachedKV is one key as a Cache holds it.
type CachedKV struct {
	Key            string
	Value          string
	CreateRevision int64
	ModRevision    int64
	Version        int64
	Lease          int64
}

// CacheEventType says what a [CacheEvent] did to its key.
type CacheEventType int

const (
	// CacheAdd: the key appeared.
	CacheAdd CacheEventType = iota + 1
	// CacheUpdate: the key's value or metadata changed.
	CacheUpdate
	// CacheDelete: the key is gone.
	CacheDelete
)

func (t CacheEventType) String() string {
	switch t {
	case CacheAdd:
		return "add"
	case CacheUpdate:
		return "update"
	case CacheDelete:
		return "delete"
	}
	return fmt.Sprintf("CacheEventType(%d)", int(t))
}

// CacheEvent is one change of a cached key.
type CacheEvent struct {
	Type CacheEventType
	// KV is the key as it is after the change (for a delete: as it was).
	KV CachedKV
	// Prev is the key as it was before an update (zero for an add or a
	// delete).
	Prev CachedKV
	// Revision is the revision of the change; after a re-read (see
	// [Cache]) the revision of that read.
	Revision int64
}

// CacheOption configures a [Cache].
type CacheOption func(*Cache)

// WithCacheHandler adds a handler for the cache's events. Handlers run one
// at a time, in revision order, on the cache's own goroutine, after the
// change is visible to reads: a slow handler holds up the cache.
func WithCacheHandler(h func(CacheEvent)) CacheOption {
	return func(c *Cache) {
		if h != nil {
			c.handlers = append(c.handlers, h)
		}
	}
}

// NewCache starts a cache of the keys under prefix ("cfg" and "cfg/" name
// the same keys, "cfg/" included). An empty prefix is ErrInvalidArgument.
// The cache fills in the background until Close is called or the client
// is closed; [Cache.WaitForRevision] with revision 0 waits for its first
// read.
func NewCache(client *clientv3.Client, prefix string, opts ...CacheOption) (*Cache, error) {
	p, err := normalizePrefix(prefix)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c := &Cache{client: client, prefix: p, kvs: map[string]CachedKV{}, changed: make(chan struct{}), done: make(chan struct{})}
	for _, opt := range opts {
		if opt != nil {
			opt(c)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.run(ctx)
	return c, nil
}

// Close stops the cache and waits until its goroutine (and so every
// handler call) has returned. Reads keep answering from the last state.
func (c *Cache) Close() {
	c.cancel()
	<-c.done
}

// Prefix is the normalized prefix the cache mirrors.
func (c *Cache) Prefix() string { return c.prefix }

// Get returns key as the cache holds it and the revision of the view it
// was read from.
func (c *Cache) Get(key string) (CachedKV, int64, bool) {
	c.mu.RLock()
	kv, ok := c.kvs[key]
	rev := c.rev
	c.mu.RUnlock()
	return kv, rev, ok
}

// List returns every cached key whose name starts with sub ("" for all),
// in key order, and the revision of the view.
func (c *Cache) List(sub string) ([]CachedKV, int64) {
	c.mu.RLock()
	out := make([]CachedKV, 0, len(c.kvs))
	for k, kv := range c.kvs {
		if strings.HasPrefix(k, sub) {
			out = append(out, kv)
		}
	}
	rev := c.rev
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b CachedKV) int { return strings.Compare(a.Key, b.Key) })
	return out, rev
}

// Len returns the number of cached keys and the revision of the view.
func (c *Cache) Len() (int, int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.kvs), c.rev
}

// Revision is the revision the cache's contents reflect: every change up
// to it, and none after it, is applied. It is 0 before the first read.
func (c *Cache) Revision() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.rev
}

// Synced reports whether the cache has read the prefix and follows a live
// watch. It is false before the first read and while the cache recovers
// from a broken watch; reads then answer from the last state, labelled
// with its (older) revision.
func (c *Cache) Synced() bool { return c.synced.Load() }

// WaitForRevision blocks until the cache reflects revision rev or later
// (rev <= 0: until its first read), ctx ends, or the cache is closed
// (ErrClosed). Pass the revision of a write's response to read your own
// write from the cache. It does not wait for handlers: they run after a
// change is visible, so a handler may still be running for rev when this
// returns ([Cache.Close] waits for every handler call).
func (c *Cache) WaitForRevision(ctx context.Context, rev int64) error {
	asked := false
	for {
		c.mu.RLock()
		cur, ch := c.rev, c.changed
		c.mu.RUnlock()
		if cur > 0 && cur >= rev {
			return nil
		}
		select {
		case <-c.done:
			return fmt.Errorf("%w: cache of %s: wait for revision %d", ErrClosed, c.prefix, rev)
		default:
		}
		var t *time.Timer
		var tick <-chan time.Time
		if cur > 0 && c.synced.Load() {
			if !asked {
				// Nothing under the prefix changed at rev: only a progress
				// notice moves the cache there. Ask for one, and again if
				// it was lost (the stream was replaced).
				_ = c.client.RequestProgress(clientv3.WithRequireLeader(ctx))
				asked = true
			}
			t = time.NewTimer(time.Second)
			tick = t.C
		}
		select {
		case <-ch:
		case <-tick:
			asked = false
		case <-c.done:
		case <-ctx.Done():
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return fmt.Errorf("recipes: cache of %s: wait for revision %d: %w", c.prefix, rev, context.Cause(ctx))
		}
	}
}

// run keeps the cache in step until ctx ends or the client is closed.
func (c *Cache) run(ctx context.Context) {
	defer close(c.done)
	defer c.synced.Store(false)
	b := newBackoff()
	relist := true
	for ctx.Err() == nil && c.client.Ctx().Err() == nil {
		var (
			ch     clientv3.WatchChan
			cancel context.CancelFunc
			err    error
		)
		if relist {
			ch, cancel, err = c.load(ctx)
		} else {
			ch, cancel, err = c.resume(ctx)
		}
		if err == nil {
			c.synced.Store(true)
			end, delivered := c.follow(ctx, ch)
			cancel()
			c.synced.Store(false)
			relist = end == endCompacted
			if delivered {
				b = newBackoff()
			}
		} else if err == errCompacted {
			relist = true
			continue
		}
		if pause(ctx, c.client, b.next()) != nil {
			return
		}
	}
}

// errCompacted: the revision to resume from was compacted.
var errCompacted = fmt.Errorf("%w: revisions compacted", ErrEtcd)

// load opens a synced watch on the prefix, reads the prefix behind it and
// makes the cache equal to that read, delivering the difference.
func (c *Cache) load(ctx context.Context) (clientv3.WatchChan, context.CancelFunc, error) {
	w, err := openSyncedWatch(ctx, c.client, c.prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, nil, err
	}
	resp, err := waitAnswer(ctx, c.client, c.prefix, func(ctx context.Context) (*clientv3.GetResponse, error) {
		return c.client.Get(ctx, c.prefix, clientv3.WithPrefix())
	})
	if err != nil {
		w.cancel()
		return nil, nil, err
	}
	c.replace(resp.Header.Revision, resp.Kvs)
	return w.ch, w.cancel, nil
}

// resume opens a watch from the revision after the cache's and waits
// until etcd confirms it.
func (c *Cache) resume(ctx context.Context) (clientv3.WatchChan, context.CancelFunc, error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	timer := time.AfterFunc(attemptTimeout, cancel)
	ch := c.client.Watch(wctx, c.prefix, clientv3.WithPrefix(), clientv3.WithRev(c.Revision()+1), clientv3.WithCreatedNotify())
	resp, ok := <-ch
	timer.Stop()
	switch {
	case ok && resp.CompactRevision != 0:
		cancel()
		return nil, nil, errCompacted
	case !ok || !resp.Created || resp.Canceled || resp.Err() != nil:
		cancel()
		return nil, nil, fmt.Errorf("%w: cache of %s: watch not resumed", ErrEtcd, c.prefix)
	}
	return ch, cancel, nil
}

// follow applies the watch's events, one revision at a time, and its
// progress notices, until the watch ends.
func (c *Cache) follow(ctx context.Context, ch clientv3.WatchChan) (end watchEnd, delivered bool) {
	for {
		var resp clientv3.WatchResponse
		var ok bool
		select {
		case resp, ok = <-ch:
		case <-ctx.Done():
			return endBroken, delivered
		}
		switch {
		case !ok:
			return endBroken, delivered
		case resp.CompactRevision != 0:
			return endCompacted, delivered
		case resp.Canceled || resp.Err() != nil:
			return endBroken, delivered
		}
		delivered = true
		if resp.IsProgressNotify() {
			c.advance(resp.Header.Revision)
			continue
		}
		evs := resp.Events
		for len(evs) > 0 {
			r := evs[0].Kv.ModRevision
			n := 1
			for n < len(evs) && evs[n].Kv.ModRevision == r {
				n++
			}
			c.apply(r, evs[:n])
			evs = evs[n:]
		}
	}
}

// toCached returns kv as a CachedKV without copying its key and value:
// the strings share the bytes of kv, which the cache owns (each response
// and event is decoded into slices of its own) and never changes.
func toCached(kv *mvccpb.KeyValue) CachedKV {
	return CachedKV{
		Key:            unsafe.String(unsafe.SliceData(kv.Key), len(kv.Key)),
		Value:          unsafe.String(unsafe.SliceData(kv.Value), len(kv.Value)),
		CreateRevision: kv.CreateRevision,
		ModRevision:    kv.ModRevision,
		Version:        kv.Version,
		Lease:          kv.Lease,
	}
}

// apply applies the events of revision rev, if the cache is not past it.
func (c *Cache) apply(rev int64, evs []*clientv3.Event) {
	var out []CacheEvent
	c.mu.Lock()
	if rev <= c.rev {
		c.mu.Unlock()
		return
	}
	for _, ev := range evs {
		kv := toCached(ev.Kv)
		old, had := c.kvs[kv.Key]
		switch {
		case ev.Type == mvccpb.DELETE && had:
			delete(c.kvs, kv.Key)
			out = append(out, CacheEvent{Type: CacheDelete, KV: old, Revision: rev})
		case ev.Type == mvccpb.PUT:
			c.kvs[kv.Key] = kv
			if had {
				out = append(out, CacheEvent{Type: CacheUpdate, KV: kv, Prev: old, Revision: rev})
			} else {
				out = append(out, CacheEvent{Type: CacheAdd, KV: kv, Revision: rev})
			}
		}
	}
	c.setRevLocked(rev)
	c.mu.Unlock()
	c.deliver(out)
}

// advance moves the revision to rev (a progress notice: nothing under the
// prefix changed up to rev).
func (c *Cache) advance(rev int64) {
	c.mu.Lock()
	if rev > c.rev {
		c.setRevLocked(rev)
	}
	c.mu.Unlock()
}

// replace makes the cache equal to a read of the prefix at rev and
// delivers the difference from what it held.
func (c *Cache) replace(rev int64, kvs []*mvccpb.KeyValue) {
	var out []CacheEvent
	c.mu.Lock()
	if rev < c.rev {
		c.mu.Unlock()
		return // a read older than what is applied (cannot happen: linearizable)
	}
	first := c.rev == 0
	report := len(c.handlers) > 0
	next := make(map[string]CachedKV, len(kvs))
	for _, kv := range kvs {
		n := toCached(kv)
		next[n.Key] = n
		if !report {
			continue
		}
		if first {
			out = append(out, CacheEvent{Type: CacheAdd, KV: n, Revision: rev})
			continue
		}
		old, had := c.kvs[n.Key]
		switch {
		case !had:
			out = append(out, CacheEvent{Type: CacheAdd, KV: n, Revision: rev})
		case old.ModRevision != n.ModRevision:
			out = append(out, CacheEvent{Type: CacheUpdate, KV: n, Prev: old, Revision: rev})
		}
	}
	if report && !first {
		var gone []CacheEvent
		for k, old := range c.kvs {
			if _, ok := next[k]; !ok {
				gone = append(gone, CacheEvent{Type: CacheDelete, KV: old, Revision: rev})
			}
		}
		slices.SortFunc(gone, func(a, b CacheEvent) int { return strings.Compare(a.KV.Key, b.KV.Key) })
		out = append(out, gone...)
	}
	c.kvs = next
	// The watch behind this read is open: the cache is synced from the
	// moment a waiter can see the read, not after the handlers ran.
	c.synced.Store(true)
	c.setRevLocked(max(rev, 1))
	c.mu.Unlock()
	c.deliver(out)
}

func (c *Cache) setRevLocked(rev int64) {
	c.rev = rev
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *Cache) deliver(evs []CacheEvent) {
	for _, ev := range evs {
		for _, h := range c.handlers {
			h(ev)
		}
	}
}
