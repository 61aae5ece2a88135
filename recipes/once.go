package recipes

import (
	"context"
	"reflect"
	"sync/atomic"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// onceKV returns a KV whose transactions reach etcd at most once per call.
//
// clientv3 retries a request, even a write that is not idempotent, when the
// server answers Canceled or DeadlineExceeded while the caller's context is
// still live, as a member does for the requests in flight when it stops.
// The first attempt may have been committed by the rest of the cluster all
// the same, so the resend applies the write a second time, later, possibly
// after its caller gave up and cleaned up:
//
//   - an acquisition of a lock, semaphore slot or leadership puts its key
//     back after the failed call removed it (or, for a Try call, finds the
//     first attempt's key, reports ErrLocked and leaves it): bound to the
//     session's lease, that key then blocks every other waiter until the
//     session ends, and nobody holds it;
//   - an item put with "create if absent" is put again after it was
//     dequeued, and an ack that succeeded reports its claim lost.
//
// Such an answer makes onceKV end the request with a retryable Unavailable
// error that says the outcome is unknown, and no copy of the request is
// left in the client to be sent later: the caller cleans up (and may try
// again) behind the only attempt, which the member that answered had
// already passed on to the cluster or never will.
//
// Every write that creates something goes through onceKV: the acquisitions
// (acquire in session_hold.go), queue items, claims, acks and nacks, floor
// moves, and the barriers' writes. A few writes keep the plain client and
// its retries, because a duplicate of them changes nothing: deletes fenced
// by create revision (Unlock, Resign, cleanup of a known key), which a
// newer incarnation of the key does not match; deletes of a key whose
// creation is in doubt (cleanup with revision 0), which this process
// does not create again before the delete returned (see gateFor); and
// Proclaim, a put of the same value fenced by the leadership's Guard, so a
// duplicate writes nothing once the leadership ended.
//
// A client whose KV was replaced (by clientv3/namespace, or any wrapper) is
// used as it is, resends included: the wrapper decides which keys a
// request touches, and going around it would write outside the namespace
// that every read and watch of the primitive looks in.
func onceKV(c *clientv3.Client) clientv3.KV {
	if reflect.TypeOf(c.KV) != plainKV {
		return c.KV
	}
	return clientv3.NewKVFromKVClient(onceKVClient{pb.NewKVClient(c.ActiveConnection())}, c)
}

// plainKV is the type of the KV that clientv3.New gives a client.
var plainKV = reflect.TypeOf(clientv3.NewKV(&clientv3.Client{}))

type onceKVClient struct{ pb.KVClient }

func (k onceKVClient) Txn(ctx context.Context, in *pb.TxnRequest, opts ...grpc.CallOption) (*pb.TxnResponse, error) {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ended atomic.Bool
	opts = append(opts[:len(opts):len(opts)], grpc.OnFinish(func(err error) {
		// Runs before clientv3's retry interceptor looks at the error:
		// with the attempt's context canceled it returns instead of
		// sending the request again.
		if c := status.Code(err); c == codes.Canceled || c == codes.DeadlineExceeded {
			ended.Store(true)
			cancel()
		}
	}))
	resp, err := k.KVClient.Txn(actx, in, opts...)
	if err != nil && ended.Load() && ctx.Err() == nil {
		return nil, status.Errorf(codes.Unavailable, "the server ended the request (%v); it may or may not have been applied", err)
	}
	return resp, err
}
