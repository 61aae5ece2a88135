package recipes

import (
	"context"
	"reflect"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// The requests on the hot path of every lock, semaphore and election (the
// acquisition and the fenced release) are built as etcd's protobuf
// messages and, on a client whose KV is clientv3's own, sent straight to
// its gRPC connection. clientv3's request builder costs more client CPU
// than the round trip's share of it warrants: every clientv3.Compare is
// cloned by reflection twice (once by Compare, once by Txn.If), and every
// Op is converted again on each call. The connection is the one clientv3
// uses itself, with its interceptors (retries, auth token), so a request
// sent here behaves as one sent through c.KV.
//
// A client whose KV was replaced (clientv3/namespace or another wrapper)
// gets the same request as clientv3 ops through its own KV (see onceKV
// for why that wrapper must not be bypassed).

// rawKV sends prebuilt requests on a client with clientv3's own KV.
type rawKV struct {
	once  pb.KVClient // a write reaches etcd at most once (onceKVClient)
	retry pb.KVClient // clientv3's retry interceptor applies, as for c.Txn
}

// newRawKV returns the raw path of c, or nil if c's KV was replaced.
func newRawKV(c *clientv3.Client) *rawKV {
	if reflect.TypeOf(c.KV) != plainKV {
		return nil
	}
	kc := pb.NewKVClient(c.ActiveConnection())
	return &rawKV{once: onceKVClient{kc}, retry: kc}
}

// rawCallOpts are the call options clientv3 gives every request that
// matter for the small requests sent here: wait for a connection to
// become ready rather than fail at once while the client reconnects.
var rawCallOpts = []grpc.CallOption{grpc.WaitForReady(true)}

// commitTxn sends req on c: through raw when c has clientv3's own KV
// (raw == newRawKV(c)), else through c.KV as clientv3 ops. With once, a
// write is sent at most once (see onceKV); a wrapped KV is used as it is.
func commitTxn(ctx context.Context, c *clientv3.Client, raw *rawKV, req *pb.TxnRequest, once bool) (*clientv3.TxnResponse, error) {
	if raw == nil {
		cmps, thenOps, elseOps := txnOps(req)
		return c.KV.Txn(ctx).If(cmps...).Then(thenOps...).Else(elseOps...).Commit()
	}
	kc := raw.retry
	if once {
		kc = raw.once
	}
	resp, err := kc.Txn(ctx, req, rawCallOpts...)
	if err != nil {
		return nil, clientv3.ContextError(ctx, err)
	}
	return (*clientv3.TxnResponse)(resp), nil
}

// txnOps converts the requests built in this file into clientv3 ops.
func txnOps(req *pb.TxnRequest) (cmps []clientv3.Cmp, thenOps, elseOps []clientv3.Op) {
	for _, c := range req.Compare {
		cmps = append(cmps, clientv3.FromCompare(c))
	}
	return cmps, requestOps(req.Success), requestOps(req.Failure)
}

func requestOps(reqs []*pb.RequestOp) []clientv3.Op {
	ops := make([]clientv3.Op, 0, len(reqs))
	for _, r := range reqs {
		switch {
		case r.GetRequestPut() != nil:
			p := r.GetRequestPut()
			opts := []clientv3.OpOption{clientv3.WithLease(clientv3.LeaseID(p.Lease))}
			if p.PrevKv {
				opts = append(opts, clientv3.WithPrevKV())
			}
			ops = append(ops, clientv3.OpPut(string(p.Key), string(p.Value), opts...))
		case r.GetRequestRange() != nil:
			g := r.GetRequestRange()
			var opts []clientv3.OpOption
			if len(g.RangeEnd) > 0 {
				opts = append(opts, clientv3.WithRange(string(g.RangeEnd)))
			}
			if g.KeysOnly {
				opts = append(opts, clientv3.WithKeysOnly())
			}
			if g.SortOrder != pb.RangeRequest_NONE {
				opts = append(opts, clientv3.WithSort(clientv3.SortTarget(g.SortTarget), clientv3.SortOrder(g.SortOrder)))
			}
			if g.Limit > 0 {
				opts = append(opts, clientv3.WithLimit(g.Limit))
			}
			ops = append(ops, clientv3.OpGet(string(g.Key), opts...))
		case r.GetRequestTxn() != nil:
			cmps, thenOps, elseOps := txnOps(r.GetRequestTxn())
			ops = append(ops, clientv3.OpTxn(cmps, thenOps, elseOps))
		case r.GetRequestDeleteRange() != nil:
			d := r.GetRequestDeleteRange()
			var opts []clientv3.OpOption
			if len(d.RangeEnd) > 0 {
				opts = append(opts, clientv3.WithRange(string(d.RangeEnd)))
			}
			ops = append(ops, clientv3.OpDelete(string(d.Key), opts...))
		default:
			panic("recipes: txnOps: unsupported request")
		}
	}
	return ops
}

// createdAt is the comparison "key (or every key in [key, end) if end is
// not nil) has create revision rev"; rev 0 means "does not exist".
func createdAt(key, end []byte, rev int64) *pb.Compare {
	return &pb.Compare{
		Key:         key,
		RangeEnd:    end,
		Target:      pb.Compare_CREATE,
		Result:      pb.Compare_EQUAL,
		TargetUnion: &pb.Compare_CreateRevision{CreateRevision: rev},
	}
}

// modifiedAt is the comparison "key has mod revision rev".
func modifiedAt(key []byte, rev int64) *pb.Compare {
	return &pb.Compare{
		Key:         key,
		Target:      pb.Compare_MOD,
		Result:      pb.Compare_EQUAL,
		TargetUnion: &pb.Compare_ModRevision{ModRevision: rev},
	}
}

// getOp, putOp and deleteOp are single requests of a transaction.
func getOp(r *pb.RangeRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: r}}
}

func putOp(r *pb.PutRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: r}}
}

func deleteOp(key []byte) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: key}}}
}

func txnOp(r *pb.TxnRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: r}}
}

// fencedDelete is the request "delete key if its create revision is still
// rev": it succeeds only if it deleted that very incarnation of key.
func fencedDelete(key string, rev int64) *pb.TxnRequest {
	k := []byte(key)
	return &pb.TxnRequest{
		Compare: []*pb.Compare{createdAt(k, nil, rev)},
		Success: []*pb.RequestOp{deleteOp(k)},
	}
}
