package snapshot

import (
	"bytes"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// split cuts b into n buffers, as HTTP/2 frames cut a message.
func split(b []byte, n int) mem.BufferSlice {
	var s mem.BufferSlice
	step := (len(b) + n - 1) / n
	for len(b) > 0 {
		k := min(step, len(b))
		s = append(s, mem.SliceBuffer(append([]byte(nil), b[:k]...)))
		b = b[k:]
	}
	return s
}

func chunk(fill byte, revision int64) *pb.SnapshotResponse {
	return &pb.SnapshotResponse{
		Header:         &pb.ResponseHeader{Revision: revision},
		RemainingBytes: 1 << 20,
		Blob:           bytes.Repeat([]byte{fill}, 32<<10),
	}
}

// TestGatherCodec checks that gatherCodec decodes what gRPC's proto codec
// encodes, whether the message comes in one buffer or several, and that a
// decoded message keeps its bytes when the codec reuses its buffer for the
// next one.
func TestGatherCodec(t *testing.T) {
	c := gatherCodec{}
	var got []*pb.SnapshotResponse
	var want []*pb.SnapshotResponse
	for i, parts := range []int{1, 3, 2, 5} {
		m := chunk(byte('a'+i), int64(i+1))
		data, err := c.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		wire := data.Materialize()
		data.Free()
		r := new(pb.SnapshotResponse)
		if err := c.Unmarshal(split(wire, parts), r); err != nil {
			t.Fatalf("%d parts: %v", parts, err)
		}
		got, want = append(got, r), append(want, m)
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("message %d: decoded %d bytes of blob starting %q, want %d of %q",
				i, len(got[i].Blob), got[i].Blob[:1], len(want[i].Blob), want[i].Blob[:1])
		}
	}
	if err := c.Unmarshal(split([]byte{0xff, 0xff}, 2), new(pb.SnapshotResponse)); err == nil {
		t.Error("a malformed message decoded without error")
	}
	if c.Name() != "proto" {
		t.Errorf("Name() = %q, want proto (the content-subtype etcd serves)", c.Name())
	}
}
