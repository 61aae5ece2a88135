package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/version"
	"go.etcd.io/etcd/server/v3/storage/backend"
	"go.etcd.io/etcd/server/v3/storage/schema"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// Members that ran etcd 3.5 or older wrote some raft entries as bare v2
// store requests: every 3.5 member publishes its name and client URLs that
// way when it starts, and the cluster version moves that way up to 3.5.
// etcd 3.6 still decodes them. The bundled etcd 3.7 does not, yet it
// replays the WAL from its newest snapshot record, not from the index its
// backend has applied, and it decodes every replayed entry, applied or
// not. etcd writes a snapshot record only every snapshot-count entries
// (10,000 by default), so a cluster that upgraded 3.5 -> 3.6 and then saw
// fewer writes than that still has such entries after its last record,
// and its first member moved onto 3.7 crash-loops with "unmarshal should
// never fail". (etcd means 3.7 to bootstrap from the backend's
// consistent index, etcd-io/etcd#20187; 3.7.3 does not yet.)
//
// checkpointLegacyWAL makes the member start where the backend is: before
// etcd opens the WAL, it looks for entries this etcd cannot decode after
// the newest snapshot record and, if there are some and the backend has
// applied all of them, appends a snapshot record at the applied index
// (never past the WAL's commit index), which is what etcd itself would
// have written at its next snapshot. The entries stay in the WAL files
// (an older etcd can still read them after a downgrade); etcd 3.7 just no
// longer replays them. It changes nothing when the WAL has no such entry.

// walCheckpoint is what checkpointLegacyWAL found and did.
type walCheckpoint struct {
	// Legacy counts the entries after the newest snapshot record that
	// this etcd cannot decode; Last is the index of the last of them.
	Legacy int
	Last   uint64
	// Index and Term are those of the snapshot record written (0 when
	// none was).
	Index, Term uint64
}

// undecodable tells whether etcd's apply would fail on e: a normal entry
// whose data is no InternalRaftRequest, or one without any request ID.
func undecodable(e *raftpb.Entry) bool {
	if e.GetType() != raftpb.EntryType_EntryNormal || len(e.GetData()) == 0 {
		return false
	}
	var r pb.InternalRaftRequest
	if err := proto.Unmarshal(e.GetData(), &r); err != nil {
		return true
	}
	return r.GetID() == 0 && r.GetHeader() == nil
}

// CheckpointReport starts what `server --checkpoint-wal` prints when it
// succeeds, so that its caller can tell it from another program's output.
const CheckpointReport = "checkpoint-wal: "

// describe says what the check found and did, for member name.
func (c walCheckpoint) describe(name string) string {
	if c.Index == 0 {
		return fmt.Sprintf("member %q: no entries of etcd 3.5 or older to skip in the WAL after its last snapshot record", name)
	}
	return fmt.Sprintf("member %q: the WAL held %d entries written by etcd 3.5 or older (the last at index %d) that etcd %s cannot decode; "+
		"recorded a raft snapshot at the backend's applied index %d (term %d), so that etcd does not replay them",
		name, c.Legacy, c.Last, version.Version, c.Index, c.Term)
}

// checkpointLegacyWAL inspects the WAL and backend of the member with data
// dir dataDir (and WAL dir walDir, if set apart) and records a snapshot
// past the entries etcd cannot decode (see above). The member must not be
// running: the WAL is opened for writing, which locks its files.
func checkpointLegacyWAL(lg *zap.Logger, dataDir, walDir string) (walCheckpoint, error) {
	walDir, dbPath := memberDirs(dataDir, walDir)
	var res walCheckpoint
	if !wal.Exist(walDir) {
		return res, nil
	}
	snaps, err := wal.ValidSnapshotEntries(lg, walDir)
	if err != nil {
		return res, fmt.Errorf("read the WAL's snapshot records: %w", err)
	}
	latest := &walpb.Snapshot{Index: new(uint64(0)), Term: new(uint64(0))}
	if len(snaps) > 0 {
		latest = snaps[len(snaps)-1]
	}
	r, err := wal.OpenForRead(lg, walDir, latest)
	if err != nil {
		return res, fmt.Errorf("open the WAL: %w", err)
	}
	_, hs, ents, err := r.ReadAll()
	_ = r.Close()
	if err != nil {
		// A torn tail, for one: etcd repairs it when it starts, and
		// then decodes the entries itself.
		return res, fmt.Errorf("read the WAL: %w", err)
	}
	terms := map[uint64]uint64{}
	for _, e := range ents {
		terms[e.GetIndex()] = e.GetTerm()
		if undecodable(e) {
			res.Legacy++
			res.Last = e.GetIndex()
		}
	}
	if res.Legacy == 0 {
		return res, nil
	}
	if _, err := os.Stat(dbPath); err != nil {
		return res, fmt.Errorf("%d WAL entries this etcd cannot decode, and no backend to checkpoint at: %w", res.Legacy, err)
	}
	be := backend.NewDefaultBackend(lg, dbPath)
	applied, _ := schema.ReadConsistentIndex(be.ReadTx())
	var cs raftpb.ConfState
	members, _ := schema.NewMembershipBackend(lg, be).MustReadMembersFromBackend()
	for _, m := range members {
		if m.IsLearner {
			cs.Learners = append(cs.Learners, uint64(m.ID))
		} else {
			cs.Voters = append(cs.Voters, uint64(m.ID))
		}
	}
	if err := be.Close(); err != nil {
		return res, fmt.Errorf("close the backend: %w", err)
	}
	index := min(applied, hs.GetCommit())
	if index < res.Last {
		return res, fmt.Errorf("WAL entry %d cannot be decoded by this etcd, and the backend has applied only up to %d", res.Last, index)
	}
	term, ok := terms[index]
	if !ok {
		return res, fmt.Errorf("the backend's applied index %d is not in the WAL after its snapshot record %d", index, latest.GetIndex())
	}
	if len(cs.Voters) == 0 {
		return res, errors.New("the backend lists no voting member")
	}
	w, err := wal.Open(lg, walDir, latest)
	if err != nil {
		return res, fmt.Errorf("open the WAL for writing: %w", err)
	}
	if _, _, _, err := w.ReadAll(); err != nil {
		_ = w.Close()
		return res, fmt.Errorf("read the WAL: %w", err)
	}
	err = w.SaveSnapshot(&walpb.Snapshot{Index: &index, Term: &term, ConfState: &cs})
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, fmt.Errorf("write the snapshot record: %w", err)
	}
	res.Index, res.Term = index, term
	return res, nil
}

// memberDirs are the WAL directory and backend file of a member with data
// dir dataDir and, if set, a separate WAL dir (etcd's layout).
func memberDirs(dataDir, walDir string) (string, string) {
	if walDir == "" {
		walDir = filepath.Join(dataDir, "member", "wal")
	}
	return walDir, filepath.Join(dataDir, "member", "snap", "db")
}
