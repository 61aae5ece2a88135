//go:build !linux

package snapshot

import (
	"io"
	"os"
)

// copyToFile copies r to f through the page cache: direct I/O is used on
// Linux only (see direct_linux.go).
func copyToFile(f *os.File, r io.Reader) (int64, error) {
	return copyChunks(f, r)
}
