package snapshot

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteBlockFallsBack: a direct write the file system refuses (here, a
// buffer that is not aligned) is done through the page cache instead, and
// the descriptor stays buffered.
func TestWriteBlockFallsBack(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "copy.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := setDirect(f, true); err != nil {
		t.Skipf("the test directory's file system refuses O_DIRECT (%v): no direct write to refuse", err)
	}
	b := alignedBlock()
	data := b[1 : 1+directAlign] // misaligned address
	for i := range data {
		data[i] = byte(i)
	}
	direct, err := writeBlock(f, data, true)
	if err != nil || direct {
		t.Fatalf("writeBlock of a misaligned buffer: direct %v, err %v; want a buffered write", direct, err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("the file holds %d bytes, not the %d written", len(got), len(data))
	}
}
