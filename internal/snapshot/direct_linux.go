package snapshot

import (
	"errors"
	"io"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A snapshot is written with direct I/O (O_DIRECT) where the file system
// allows it, for two reasons:
//
//   - On the nodes, `snapshot save` runs beside the member it saves, whose
//     database is a memory-mapped file that lives in the page cache. A
//     gigabyte of snapshot written through the page cache evicts as much of
//     the member's working set, and leaves as much dirty data for the
//     kernel to write back; direct I/O leaves the page cache alone.
//   - The copy into the page cache (copy_folio_from_iter_atomic) was the
//     largest single CPU cost of a save: 31% of the process's CPU time in a
//     `perf record` of a 1.4 GiB save on this project's CI VM, where the
//     2 cores are shared with the member that streams the snapshot. With
//     direct I/O the disk reads the buffer itself.
//
// Direct I/O wants the buffer address, the length and the file offset
// aligned. The stream is read into aligned blocks of directBlock bytes; a
// writer goroutine writes one block while the next is received. The tail
// that is not a multiple of directAlign is written through the page cache,
// after O_DIRECT is cleared on the descriptor. A file system that refuses
// O_DIRECT (tmpfs on older kernels, some network file systems) gets the
// buffered copy of copyChunks; one that accepts the flag but then refuses
// a write falls back the same way, from where it stopped.
const (
	directBlock = 1 << 20
	directAlign = 4096
	// directBuffers: one block being received, one being written, one
	// spare so that a slow write does not stall the stream at once.
	directBuffers = 3
)

// alignedBlock returns a directBlock-long slice whose address is a multiple
// of directAlign.
func alignedBlock() []byte {
	b := make([]byte, directBlock+directAlign)
	off := 0
	if r := int(uintptr(unsafe.Pointer(&b[0])) % directAlign); r != 0 {
		off = directAlign - r
	}
	return b[off : off+directBlock : off+directBlock]
}

// setDirect turns O_DIRECT on or off for f's descriptor.
func setDirect(f *os.File, on bool) error {
	fd := int(f.Fd())
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if on {
		flags |= unix.O_DIRECT
	} else {
		flags &^= unix.O_DIRECT
	}
	_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags)
	return err
}

// copyToFile copies r to f, which must be empty and at offset 0, with
// direct I/O where f's file system allows it (see above), and returns the
// number of bytes copied.
func copyToFile(f *os.File, r io.Reader) (int64, error) {
	if setDirect(f, true) != nil {
		return copyChunks(f, r)
	}
	free := make(chan []byte, directBuffers)
	for range directBuffers {
		free <- alignedBlock()
	}
	full := make(chan []byte, directBuffers)
	written := make(chan error, 1)
	var failed atomic.Bool // a write failed: stop receiving
	go func() {
		direct := true
		var err error
		for b := range full {
			if err == nil {
				if direct, err = writeBlock(f, b, direct); err != nil {
					failed.Store(true)
				}
			}
			free <- b[:cap(b)]
		}
		written <- err
	}()

	var total int64
	var tail []byte
	var rerr error
	for !failed.Load() {
		b := <-free
		n, err := io.ReadFull(r, b)
		total += int64(n)
		if n == len(b) && err == nil {
			full <- b
			continue
		}
		aligned := n &^ (directAlign - 1)
		tail = append(tail, b[aligned:n]...)
		if aligned > 0 {
			full <- b[:aligned]
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			rerr = err
		}
		break
	}
	close(full)
	werr := <-written
	switch {
	case werr != nil:
		return total, werr
	case rerr != nil:
		return total, rerr
	}
	if len(tail) > 0 {
		if err := setDirect(f, false); err != nil {
			return total, err
		}
		if _, err := f.Write(tail); err != nil {
			return total, err
		}
	}
	return total, nil
}

// writeBlock writes b to f, with direct I/O while direct is true. When the
// file system refuses a direct write (EINVAL), O_DIRECT is cleared and the
// rest of b, and every later block, goes through the page cache; the
// returned direct says which.
func writeBlock(f *os.File, b []byte, direct bool) (bool, error) {
	n, err := f.Write(b)
	if err == nil || !direct || !errors.Is(err, unix.EINVAL) {
		return direct, err
	}
	if err := setDirect(f, false); err != nil {
		return false, err
	}
	_, err = f.Write(b[n:])
	return false, err
}
