// Package snapshot saves, inspects and restores etcd snapshots with etcd's
// own libraries: the clientv3 maintenance Snapshot stream for Save, and
// go.etcd.io/etcd/etcdutl/v3/snapshot for Status and Restore. Nothing here
// reads or writes the bbolt format itself.
//
// The `terraform-provider-etcd snapshot` subcommands (internal/snapshotcmd)
// and the etcd_snapshot resource are built on it.
package snapshot

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Sentinel errors; the functions of this package wrap them.
var (
	// ErrDirMissing: the directory a snapshot is to be written into does
	// not exist (or is not a directory).
	ErrDirMissing = errors.New("snapshot directory does not exist")
	// ErrCorrupt: the snapshot stream or file fails its integrity check.
	ErrCorrupt = errors.New("snapshot is corrupt")
	// ErrNewerStorageVersion: the snapshot was taken from a newer etcd
	// than the one it is to be restored for.
	ErrNewerStorageVersion = errors.New("snapshot storage version is newer than the target etcd")
)

// Saved describes a snapshot written by Save.
type Saved struct {
	Path string
	// Size is the file size in bytes, etcd's sha256 trailer included.
	Size int64
	// ServerVersion is the storage version the member that sent the
	// snapshot reports (what etcdctl prints as "Server version"); empty
	// for members older than 3.6, and for a new member that has not
	// recorded it yet.
	ServerVersion string
}

// CheckDir returns an error wrapping ErrDirMissing when the directory of
// path does not exist or is not a directory.
func CheckDir(path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: %s (create it first)", ErrDirMissing, dir)
	case err != nil:
		return fmt.Errorf("%w: %v", ErrDirMissing, err)
	case !fi.IsDir():
		return fmt.Errorf("%w: %s is not a directory", ErrDirMissing, dir)
	}
	return nil
}

// Save streams a point-in-time snapshot from the member cli is connected to
// (give it exactly one endpoint) into path. The data goes to a temporary
// file next to path, which is synced to disk and then renamed over path, so
// path is either the complete snapshot or untouched. On Linux the file is
// written with direct I/O where its file system allows it, so that a save
// on a node does not push the member's database out of the page cache
// (direct_linux.go).
//
// Like etcdctl, Save does not hash what it receives: sha256 runs at about
// the speed of the stream here (150 MiB/s on this project's 2-core CI) and
// would halve the throughput. The sha256 trailer etcd appends is checked
// where it matters, by VerifyFile, ReadStatus and Restore.
func Save(ctx context.Context, cli *clientv3.Client, path string) (saved Saved, err error) {
	if err := CheckDir(path); err != nil {
		return saved, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := cli.SnapshotWithVersion(ctx)
	if err != nil {
		return saved, err
	}
	defer resp.Snapshot.Close()

	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part-*")
	if err != nil {
		return saved, err
	}
	part := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(part)
		}
	}()

	n, err := copyToFile(f, resp.Snapshot)
	if err != nil {
		return saved, fmt.Errorf("receiving the snapshot: %w", err)
	}
	if err = f.Sync(); err != nil {
		return saved, err
	}
	if err = f.Close(); err != nil {
		return saved, err
	}
	if err = os.Rename(part, path); err != nil {
		return saved, err
	}
	syncDir(filepath.Dir(path))

	return Saved{Path: path, Size: n, ServerVersion: resp.Version}, nil
}

// chunkSize is the size of copyChunks' writes, which go through the page
// cache (a file system without direct I/O, or a system other than Linux).
// The stream arrives in messages of 32 KiB; 64 KiB writes make half the
// system calls of one write per message. Buffered 1 MiB writes were slower
// on this project's CI VM: more of the time went to the kernel's copy into
// the page cache (copy_folio_from_iter_atomic).
const chunkSize = 64 << 10

// copyChunks copies r to w in writes of chunkSize.
func copyChunks(w io.Writer, r io.Reader) (int64, error) {
	buf := make([]byte, chunkSize)
	var total int64
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return total, nil
		case err != nil:
			return total, err
		}
	}
}

// syncDir makes a rename in dir durable. Failing to is not an error: some
// file systems do not support syncing a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// HasTrailer tells whether a snapshot of size bytes ends in etcd's sha256
// trailer: the database is a whole number of 512-byte sectors, the trailer
// adds sha256.Size bytes (the rule etcdutl's restore applies).
func HasTrailer(size int64) bool { return size%512 == sha256.Size }
