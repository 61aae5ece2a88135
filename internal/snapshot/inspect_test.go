package snapshot

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// TestCheck checks that Check's one pass gives FileSHA256's sum and accepts
// what ReadStatus accepts, for a good snapshot, one without its trailer (a
// database copied from a data dir), one with a damaged byte and a
// truncated one.
func TestCheck(t *testing.T) {
	c := testserver.Start(t, testserver.WithMembers(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 200 {
		if _, err := c.Client().Put(ctx, fmt.Sprintf("/k/%03d", i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	if _, err := Save(ctx, c.Client(), good); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	damaged := append([]byte{}, data...)
	damaged[len(damaged)/2] ^= 0xff
	for _, tc := range []struct {
		name    string
		path    string
		corrupt bool
	}{
		{"good", good, false},
		{"no trailer", write("db", data[:len(data)-sha256.Size]), false},
		{"damaged", write("damaged.db", damaged), true},
		{"truncated", write("truncated.db", data[:len(data)/2]), true},
	} {
		sum, err := Check(tc.path)
		want, herr := FileSHA256(tc.path)
		if herr != nil || sum != want {
			t.Errorf("%s: sum %q, want %q (%v)", tc.name, sum, want, herr)
		}
		_, serr := ReadStatus(tc.path)
		if tc.corrupt {
			if !errors.Is(err, ErrCorrupt) || !errors.Is(serr, ErrCorrupt) {
				t.Errorf("%s: Check %v, ReadStatus %v, want ErrCorrupt", tc.name, err, serr)
			}
			continue
		}
		if err != nil || serr != nil {
			t.Errorf("%s: Check %v, ReadStatus %v", tc.name, err, serr)
		}
	}
	if sum, err := Check(filepath.Join(dir, "missing.db")); err == nil || sum != "" {
		t.Errorf("missing file: %q %v", sum, err)
	}
}
