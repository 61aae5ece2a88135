// Package snapshot saves, inspects and restores etcd snapshots with etcd's
// own libraries: the clientv3 maintenance Snapshot stream for Save, and
// go.etcd.io/etcd/etcdutl/v3/snapshot for Status and Restore. Nothing here
// reads or writes the bbolt format itself.
//
// The `terraform-provider-etcd snapshot` subcommands (internal/snapshotcmd)
// and the etcd_snapshot resource are built on it.
package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
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
	// Size is the file size in bytes, the integrity trailer included.
	Size int64
	// SHA256 is the hexadecimal sha256 of the whole file (what sha256sum
	// prints); empty unless SaveOptions.FileSHA256.
	SHA256 string
	// ServerVersion is the etcd version of the member that sent the
	// snapshot; empty for members older than 3.6, which do not say.
	ServerVersion string
	// Verified is true when the stream carried etcd's sha256 trailer and
	// it matched the data (every etcd since 3.2 sends one).
	Verified bool
}

// SaveOptions tune Save.
type SaveOptions struct {
	// FileSHA256 also computes the sha256 of the whole file while it is
	// written (Saved.SHA256).
	FileSHA256 bool
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
// path is either the complete snapshot or untouched. The stream's sha256
// trailer is checked before the rename.
func Save(ctx context.Context, cli *clientv3.Client, path string, opts SaveOptions) (saved Saved, err error) {
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

	check := &trailerCheck{h: sha256.New()}
	var w io.Writer = io.MultiWriter(f, check)
	var fileHash hash.Hash
	if opts.FileSHA256 {
		fileHash = sha256.New()
		w = io.MultiWriter(f, check, fileHash)
	}
	n, err := io.CopyBuffer(w, resp.Snapshot, make([]byte, 1<<20))
	if err != nil {
		return saved, fmt.Errorf("receiving the snapshot: %w", err)
	}
	verified, err := check.verify()
	if err != nil {
		return saved, err
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

	saved = Saved{Path: path, Size: n, ServerVersion: resp.Version, Verified: verified}
	if fileHash != nil {
		saved.SHA256 = hex.EncodeToString(fileHash.Sum(nil))
	}
	return saved, nil
}

// syncDir makes a rename in dir durable. Failing to is not an error: some
// file systems do not support syncing a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// trailerCheck hashes everything written to it except the last sha256.Size
// bytes, which it keeps: etcd appends the sha256 of the database to the
// snapshot stream.
type trailerCheck struct {
	h     hash.Hash
	tail  []byte
	total int64
}

func (t *trailerCheck) Write(p []byte) (int, error) {
	t.total += int64(len(p))
	if len(p) >= sha256.Size {
		t.h.Write(t.tail)
		t.h.Write(p[:len(p)-sha256.Size])
		t.tail = append(t.tail[:0], p[len(p)-sha256.Size:]...)
		return len(p), nil
	}
	t.tail = append(t.tail, p...)
	if extra := len(t.tail) - sha256.Size; extra > 0 {
		t.h.Write(t.tail[:extra])
		t.tail = append(t.tail[:0], t.tail[extra:]...)
	}
	return len(p), nil
}

// verify reports whether the stream ended in a matching trailer. A stream
// without one (its length is not a bbolt page multiple plus the trailer) is
// accepted unverified; one whose trailer does not match is ErrCorrupt.
func (t *trailerCheck) verify() (bool, error) {
	if !HasTrailer(t.total) {
		return false, nil
	}
	if sum := t.h.Sum(nil); !bytes.Equal(sum, t.tail) {
		return false, fmt.Errorf("%w: the stream's sha256 trailer %x does not match its data (%x)", ErrCorrupt, t.tail, sum)
	}
	return true, nil
}

// HasTrailer tells whether a snapshot of size bytes ends in etcd's sha256
// trailer: the database is a whole number of 512-byte sectors, the trailer
// adds sha256.Size bytes (the rule etcdutl's restore applies).
func HasTrailer(size int64) bool { return size%512 == sha256.Size }
