package recipes_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.etcd.io/etcd/client/v3/namespace"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// rawCodec passes gRPC messages through as bytes.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

// cancelProxy is a gRPC proxy in front of one etcd member that passes
// every call through, except KV Txn requests that write a key under
// prefix: the first is forwarded (so etcd applies it) and then answered
// with codes.Canceled, as a member that stops answers the requests in
// flight; any later one, a resend of the same write, is held until
// release and forwarded then, as a resend that reached a member without a
// leader would be applied late.
type cancelProxy struct {
	up     *grpc.ClientConn
	addr   string
	prefix atomic.Pointer[string]
	writes atomic.Int64 // matching writes received

	mu   sync.Mutex
	held []chan struct{} // closed by release
	wg   sync.WaitGroup  // held writes still to be forwarded
}

func startCancelProxy(t *testing.T, endpoint string) *cancelProxy {
	t.Helper()
	up, err := grpc.NewClient(strings.TrimPrefix(endpoint, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cancelProxy{up: up, addr: l.Addr().String()}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(rawCodec{}), grpc.UnknownServiceHandler(p.handle))
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		p.release()
		srv.Stop()
		_ = up.Close()
	})
	return p
}

// client returns a client that reaches etcd only through the proxy.
func (p *cancelProxy) client(t *testing.T) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{p.addr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// arm makes the proxy intercept the writes under prefix from now on.
func (p *cancelProxy) arm(prefix string) {
	p.writes.Store(0)
	p.prefix.Store(&prefix)
}

// release forwards the held writes and waits until etcd answered them.
func (p *cancelProxy) release() {
	p.prefix.Store(nil)
	p.mu.Lock()
	for _, ch := range p.held {
		close(ch)
	}
	p.held = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// matches reports whether the raw TxnRequest req writes under the armed
// prefix.
func (p *cancelProxy) matches(req []byte) bool {
	prefix := p.prefix.Load()
	if prefix == nil {
		return false
	}
	var txn pb.TxnRequest
	if err := encoding.GetCodecV2("proto").Unmarshal(mem.BufferSlice{mem.SliceBuffer(req)}, &txn); err != nil {
		return false
	}
	for _, op := range append(txn.Success, txn.Failure...) {
		if put := op.GetRequestPut(); put != nil && strings.HasPrefix(string(put.Key), *prefix) {
			return true
		}
	}
	return false
}

func (p *cancelProxy) handle(_ any, ss grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(ss)
	ctx := ss.Context()
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		ctx = metadata.NewOutgoingContext(ctx, md.Copy())
	}
	codec := grpc.ForceCodecV2(rawCodec{})
	if method == pb.KV_Txn_FullMethodName {
		var req, resp []byte
		if err := ss.RecvMsg(&req); err != nil {
			return err
		}
		if !p.matches(req) {
			if err := p.up.Invoke(ctx, method, &req, &resp, codec); err != nil {
				return err
			}
			return ss.SendMsg(&resp)
		}
		if p.writes.Add(1) > 1 {
			// A resend: apply it late, after its caller gave up.
			ch := make(chan struct{})
			p.mu.Lock()
			p.held = append(p.held, ch)
			p.wg.Add(1)
			p.mu.Unlock()
			go func() {
				defer p.wg.Done()
				<-ch
				_ = p.up.Invoke(context.WithoutCancel(ctx), method, &req, &resp, codec)
			}()
			<-ctx.Done()
			return status.FromContextError(ctx.Err()).Err()
		}
		if err := p.up.Invoke(ctx, method, &req, &resp, codec); err != nil {
			return err
		}
		return status.Error(codes.Canceled, "context canceled")
	}
	cs, err := p.up.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method, codec)
	if err != nil {
		return err
	}
	go func() {
		for {
			var m []byte
			if err := ss.RecvMsg(&m); err != nil {
				_ = cs.CloseSend()
				return
			}
			if err := cs.SendMsg(&m); err != nil {
				return
			}
		}
	}()
	for {
		var m []byte
		if err := cs.RecvMsg(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := ss.SendMsg(&m); err != nil {
			return err
		}
	}
}

// clientv3 sends a write again when the server answers Canceled while the
// caller's ctx is live, although the first attempt may have been applied.
// If the resend of an acquisition is applied after the call gave up and
// removed its key, it puts the key back, bound to the session's lease: the
// lock (or leadership) is then held by nobody, and everybody else waits
// until that session ends. Acquisitions send their write once, report an
// unknown outcome, and remove the key.
func TestAcquireWriteNotResentAfterServerCancel(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 60*time.Second)
	p := startCancelProxy(t, c.Endpoints()[0])
	s, err := concurrency.NewSession(p.client(t), concurrency.WithTTL(30))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	other := newSession(t, c, 5)

	for _, tc := range []struct {
		name    string
		acquire func(ctx context.Context, prefix string) error
	}{
		{"Mutex.Lock", func(ctx context.Context, prefix string) error {
			_, err := recipes.NewMutex(s, prefix).Lock(ctx)
			return err
		}},
		{"Mutex.TryLock", func(ctx context.Context, prefix string) error {
			_, err := recipes.NewMutex(s, prefix).TryLock(ctx)
			return err
		}},
		{"RWMutex.RLock", func(ctx context.Context, prefix string) error {
			_, err := recipes.NewRWMutex(s, prefix).RLock(ctx)
			return err
		}},
		{"Election.Campaign", func(ctx context.Context, prefix string) error {
			_, err := recipes.NewElection(s, prefix).Campaign(ctx, "v")
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := "once/" + tc.name + "/"
			p.arm(prefix)
			actx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := tc.acquire(actx, prefix)
			cancel()
			p.release()
			if err == nil {
				t.Fatal("acquired although etcd's answer was lost")
			}
			if !errors.Is(err, recipes.ErrEtcd) {
				t.Errorf("acquire = %v, want ErrEtcd (outcome unknown)", err)
			}
			if n := p.writes.Load(); n != 1 {
				t.Errorf("the acquisition's write reached the server %d times, want 1", n)
			}
			// Every key of the failed acquisition is gone, and stays gone.
			var left int64 = -1
			for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				resp, err := c.Client().Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
				if err != nil {
					t.Fatal(err)
				}
				if left = resp.Count; left == 0 {
					break
				}
			}
			if left != 0 {
				t.Errorf("%d keys left under %s by the failed acquisition", left, prefix)
			}
			l, err := recipes.NewMutex(other, prefix).TryLock(ctx)
			if err != nil {
				t.Fatalf("TryLock by another session after the failed acquisition: %v", err)
			}
			_ = l.Unlock(ctx)
		})
	}
}

// A client whose KV, Watcher and Lease are wrapped (here by
// clientv3/namespace) is used as it is: onceKV must not bypass the
// wrapper, or a write would land outside the namespace that every read and
// watch looks in (a Dequeue would wait forever for the item just put).
func TestAcquireThroughNamespacedClient(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	cli := newClient(t, c)
	cli.KV = namespace.NewKV(cli.KV, "ns/")
	cli.Watcher = namespace.NewWatcher(cli.Watcher, "ns/")
	cli.Lease = namespace.NewLease(cli.Lease, "ns/")
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	other := newSession(t, c, 5)

	l, err := recipes.NewMutex(s, "locks/ns").Lock(ctx)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if !strings.HasPrefix(l.Key(), "locks/ns/") {
		t.Fatalf("key %q", l.Key())
	}
	resp, err := c.Client().Get(ctx, "ns/locks/ns/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 1 {
		t.Fatalf("keys under ns/locks/ns/: %v %v, want 1", resp, err)
	}
	if _, err := recipes.NewMutex(other, "ns/locks/ns").TryLock(ctx); !errors.Is(err, recipes.ErrLocked) {
		t.Fatalf("TryLock of the namespaced lock by another client = %v, want ErrLocked", err)
	}
	if err := l.Err(); err != nil {
		t.Fatalf("Err while held: %v", err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}

	// Contended: the namespaced session queues behind a holder and is
	// granted when it leaves; a namespaced semaphore with a free slot
	// grants at once, and a full one refuses a TryAcquire.
	held, err := recipes.NewMutex(other, "ns/locks/wait").Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *recipes.Lock, 1)
	go func() {
		l, err := recipes.NewMutex(s, "locks/wait").Lock(ctx)
		if err != nil {
			t.Errorf("namespaced Lock behind a holder: %v", err)
		}
		got <- l
	}()
	waitForKeys(t, c, "ns/locks/wait/", 2)
	if err := held.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	waiter := <-got
	if waiter == nil || waiter.Token() <= held.Token() {
		t.Fatalf("namespaced waiter granted %v after token %d", waiter, held.Token())
	}
	if err := waiter.Unlock(ctx); err != nil {
		t.Fatalf("Unlock of the namespaced waiter: %v", err)
	}
	slot, err := recipes.NewSemaphore(other, "ns/sem", 2).Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mine, err := recipes.NewSemaphore(s, "sem", 2).TryAcquire(ctx)
	if err != nil {
		t.Fatalf("namespaced TryAcquire with a free slot: %v", err)
	}
	if _, err := recipes.NewSemaphore(newSession(t, c, 5), "ns/sem", 2).TryAcquire(ctx); !errors.Is(err, recipes.ErrLocked) {
		t.Fatalf("TryAcquire of a full semaphore = %v, want ErrLocked", err)
	}
	_ = mine.Unlock(ctx)
	_ = slot.Unlock(ctx)

	q := recipes.NewQueue(cli, "jobs")
	if _, err := q.Enqueue(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if v, err := q.Dequeue(ctx); err != nil || v != "x" {
		t.Fatalf("Dequeue = %q, %v", v, err)
	}
}
