package snapshot

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
)

// trickle hands out its data in reads of at most max bytes, as the
// snapshot stream does (one 32 KiB message at a time).
type trickle struct {
	data []byte
	max  int
}

func (t *trickle) Read(p []byte) (int, error) {
	if len(t.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), t.max)], t.data)
	t.data = t.data[n:]
	return n, nil
}

// TestCopyToFile copies streams of sizes around the direct I/O block and
// alignment (the tail goes through the page cache) into files, on the test
// directory's file system and, where there is one, on tmpfs (which may
// refuse O_DIRECT, and then gets the buffered copy), and compares the files
// byte for byte.
func TestCopyToFile(t *testing.T) {
	dirs := map[string]string{"TMPDIR": t.TempDir()}
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "snapshot-test-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(d) })
		dirs["/dev/shm"] = d
	}
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{0, 1, 4095, 4096, 4097, 32 << 10, 1<<20 - 1, 1 << 20, 1<<20 + 1, 3<<20 + 12345, 7 << 20}
	for name, dir := range dirs {
		for _, size := range sizes {
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			f, err := os.Create(filepath.Join(dir, "copy.db"))
			if err != nil {
				t.Fatal(err)
			}
			n, err := copyToFile(f, &trickle{data: data, max: 32<<10 + 7})
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatalf("%s, %d bytes: %v", name, size, err)
			}
			got, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(size) || !bytes.Equal(got, data) {
				t.Fatalf("%s, %d bytes: copied %d, file holds %d bytes, equal %v", name, size, n, len(got), bytes.Equal(got, data))
			}
		}
	}
}

// TestCopyToFileStreamError: a stream that fails part-way is an error, not
// a short snapshot.
func TestCopyToFileStreamError(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "copy.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	broken := errors.New("stream broken")
	r := io.MultiReader(bytes.NewReader(make([]byte, 2<<20+100)), iotest.ErrReader(broken))
	if _, err := copyToFile(f, r); !errors.Is(err, broken) {
		t.Fatalf("err = %v, want %v", err, broken)
	}
}

// TestCopyToFileWriteError: a file that cannot be written (here, opened
// read-only) is an error, and the copy stops.
func TestCopyToFileWriteError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := copyToFile(f, bytes.NewReader(make([]byte, 3<<20))); err == nil {
		t.Fatal("copy into a read-only file: no error")
	}
}
