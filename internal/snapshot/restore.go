package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-semver/semver"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/version"
	etcdutl "go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.etcd.io/etcd/server/v3/storage/schema"
	"go.uber.org/zap"
)

// Status is etcdutl's `snapshot status` of a file: hash, revision, total
// keys, total size and storage version ("" for snapshots of etcd < 3.6).
type Status = etcdutl.Status

// RestoreConfig is etcdutl's restore configuration.
type RestoreConfig = etcdutl.RestoreConfig

// BundledVersion is the etcd version this binary's server and libraries are.
var BundledVersion = version.Version

// ReadStatus returns etcdutl's status of the snapshot file at path. It
// checks the database's integrity and reads every key, so it takes time in
// proportion to the file's size.
func ReadStatus(path string) (Status, error) {
	if err := checkFile(path); err != nil {
		return Status{}, err
	}
	// A damaged database can make bbolt's integrity check panic in a
	// goroutine of its own, which no recover catches: check the trailer
	// (when there is one) and the size before bbolt walks the pages.
	size, err := fileSize(path)
	if err != nil {
		return Status{}, err
	}
	if HasTrailer(size) {
		if err := VerifyFile(path); err != nil {
			return Status{}, err
		}
	}
	return verifiedStatus(path)
}

// Check is FileSHA256 and an integrity check in one read of the file: the
// sha256 of the whole file and the check of its trailer (the hash of
// everything but the trailer is a state that hash passes through), where
// the two would read and hash it twice, a second or more per gigabyte.
//
// A file whose trailer matches is exactly what etcd's snapshot save wrote,
// so bbolt only opens it and checks its size; etcd's restore checks the
// trailer again before it uses the file. A file without a trailer (a
// database copied from a data dir, or a truncated file) has nothing to
// check it against, so etcd's snapshot status reads every key of it, as
// ReadStatus does. That walk is what Check saves on a good snapshot: at
// 1 GiB of small keys it took about 4 of the 5 seconds of the check.
//
// sum is set whenever the file could be read, also when err then says that
// its trailer or database is damaged.
func Check(path string) (sum string, err error) {
	if err := checkFile(path); err != nil {
		return "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	size := fi.Size()
	data := size
	if HasTrailer(size) {
		data = size - sha256.Size
	}
	h := sha256.New()
	if _, err := io.CopyBuffer(h, io.LimitReader(f, data), make([]byte, 1<<20)); err != nil {
		return "", err
	}
	var trailerErr error
	if data < size {
		dataSum := h.Sum(nil) // Sum leaves the state as it is
		want := make([]byte, sha256.Size)
		if _, err := io.ReadFull(f, want); err != nil {
			return "", err
		}
		h.Write(want)
		if string(dataSum) != string(want) {
			trailerErr = fmt.Errorf("%w: %s: sha256 of the data is %s, the trailer says %s", ErrCorrupt, path, hex.EncodeToString(dataSum), hex.EncodeToString(want))
		}
	}
	sum = hex.EncodeToString(h.Sum(nil))
	switch {
	case trailerErr != nil:
		return sum, trailerErr
	case data < size:
		return sum, withDB(path, func(*bolt.Tx) error { return nil })
	}
	_, err = verifiedStatus(path)
	return sum, err
}

// verifiedStatus is ReadStatus for a file whose trailer, if any, has been
// checked.
func verifiedStatus(path string) (Status, error) {
	if err := withDB(path, func(*bolt.Tx) error { return nil }); err != nil {
		return Status{}, err
	}
	st, err := etcdutl.NewV3(zap.NewNop()).Status(path)
	if err != nil {
		return st, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	return st, nil
}

// checkFile refuses what is not a regular file before bbolt opens it (a
// missing file would otherwise be a generic error from deep inside).
func checkFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	return nil
}

// StorageVersion reads the storage version recorded in a snapshot file,
// without walking its keys. It is "" for snapshots of etcd before 3.6,
// which record none.
func StorageVersion(path string) (string, error) {
	if err := checkFile(path); err != nil {
		return "", err
	}
	var v string
	err := withDB(path, func(tx *bolt.Tx) error {
		if sv := schema.ReadStorageVersionFromSnapshot(tx); sv != nil {
			v = sv.String()
		}
		return nil
	})
	return v, err
}

func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// withDB opens the snapshot read-only (bbolt does not read the free list
// then) and runs fn in a read transaction, after checking that the file
// is as large as its database says it is: a truncated file is ErrCorrupt
// before any page beyond its end is read.
func withDB(path string, fn func(*bolt.Tx) error) error {
	size, err := fileSize(path)
	if err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: 10 * time.Second})
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		if need := tx.Size(); need > size {
			return fmt.Errorf("%w: %s is %d bytes but its database needs %d: the file is truncated", ErrCorrupt, path, size, need)
		}
		return fn(tx)
	})
}

// ParseVersion parses an etcd version given as MAJOR.MINOR or
// MAJOR.MINOR.PATCH (a leading "v" is allowed).
func ParseVersion(s string) (semver.Version, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "v")
	parts := strings.Split(t, ".")
	if len(parts) == 2 {
		parts = append(parts, "0")
	}
	if len(parts) != 3 {
		return semver.Version{}, fmt.Errorf("version %q: want MAJOR.MINOR or MAJOR.MINOR.PATCH, e.g. 3.6", s)
	}
	var n [3]int64
	for i, p := range parts {
		// Drop a pre-release or build suffix of the patch ("3.6.0-rc.1").
		if i == 2 {
			p, _, _ = strings.Cut(p, "-")
			p, _, _ = strings.Cut(p, "+")
		}
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil || v < 0 {
			return semver.Version{}, fmt.Errorf("version %q: want MAJOR.MINOR or MAJOR.MINOR.PATCH, e.g. 3.6", s)
		}
		n[i] = v
	}
	return semver.Version{Major: n[0], Minor: n[1], Patch: n[2]}, nil
}

// CheckRestorable refuses a snapshot whose storage version is newer (by
// major.minor) than target, the version of the etcd that is to run the
// restored data dir: etcd reads older storage (an upgrade) but not newer,
// and a restore is no downgrade path. It returns the storage version read.
func CheckRestorable(path string, target semver.Version) (string, error) {
	sv, err := StorageVersion(path)
	if err != nil || sv == "" {
		return sv, err
	}
	v, err := ParseVersion(sv)
	if err != nil {
		return sv, fmt.Errorf("%w: %s records storage version %q: %v", ErrCorrupt, path, sv, err)
	}
	if v.Major > target.Major || (v.Major == target.Major && v.Minor > target.Minor) {
		return sv, fmt.Errorf("%w: %s was taken from etcd %d.%d (storage version %s) and cannot be restored for etcd %d.%d: "+
			"etcd runs data of its own or an older version only. Restore it for etcd %d.%d or later, or restore a snapshot "+
			"taken from an etcd %d.%d cluster (a newer cluster is downgraded with `etcdctl downgrade`, not by a restore)",
			ErrNewerStorageVersion, path, v.Major, v.Minor, sv, target.Major, target.Minor,
			v.Major, v.Minor, target.Major, target.Minor)
	}
	return sv, nil
}

// Restore checks that the snapshot can be restored for target (see
// CheckRestorable), then restores it into cfg.OutputDataDir with etcdutl.
func Restore(lg *zap.Logger, cfg RestoreConfig, target semver.Version) error {
	if lg == nil {
		lg = zap.NewNop()
	}
	if err := checkFile(cfg.SnapshotPath); err != nil {
		return err
	}
	if !cfg.SkipHashCheck {
		// etcdutl checks the trailer too, but only after it started
		// writing the data dir; refuse a damaged file first.
		if err := VerifyFile(cfg.SnapshotPath); err != nil {
			return err
		}
		// Checked: etcdutl need not hash the file a second time (it still
		// strips the trailer).
		cfg.SkipHashCheck = true
	}
	if _, err := CheckRestorable(cfg.SnapshotPath, target); err != nil {
		return err
	}
	return etcdutl.NewV3(lg).Restore(cfg)
}

// VerifyFile checks a snapshot file's sha256 trailer. A file without one
// (copied from a data dir, say) is ErrCorrupt: restore it with
// SkipHashCheck.
func VerifyFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !HasTrailer(fi.Size()) {
		return fmt.Errorf("%w: %s (%d bytes) has no sha256 trailer: it is truncated, or a database copied from a data dir "+
			"(restore that with --skip-hash-check)", ErrCorrupt, path, fi.Size())
	}
	h := sha256.New()
	if _, err := io.CopyN(h, f, fi.Size()-sha256.Size); err != nil {
		return err
	}
	want := make([]byte, sha256.Size)
	if _, err := io.ReadFull(f, want); err != nil {
		return err
	}
	if got := h.Sum(nil); string(got) != string(want) {
		return fmt.Errorf("%w: %s: sha256 of the data is %s, the trailer says %s", ErrCorrupt, path, hex.EncodeToString(got), hex.EncodeToString(want))
	}
	return nil
}

// FileSHA256 returns the hexadecimal sha256 of a whole file.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 1<<20)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
