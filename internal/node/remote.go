package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// Runner runs shell commands on a node and writes files there. *Client is
// the SSH implementation; services only need this.
type Runner interface {
	// Run runs cmd with sh -c semantics and returns its stdout; a non-zero
	// exit is a *CommandError carrying stderr.
	Run(ctx context.Context, cmd string) (string, error)
	// Upload writes data to path atomically with mode, creating parent
	// directories; changed is false when the file already had that content
	// and mode.
	Upload(ctx context.Context, path string, data []byte, mode os.FileMode) (changed bool, err error)
	// Target names the node in messages ("user@host:port").
	Target() string
}

var _ Runner = (*Client)(nil)

// CommandError is a remote command that could not run or exited non-zero.
type CommandError struct {
	Target     string
	Command    string
	ExitStatus int // -1 when the command did not finish (signal, lost connection)
	Stderr     string
	Err        error
}

func (e *CommandError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if len(msg) > 2000 {
		msg = "..." + msg[len(msg)-2000:]
	}
	s := fmt.Sprintf("%s: command %s", e.Target, summarize(e.Command))
	if e.ExitStatus >= 0 {
		s += fmt.Sprintf(" exited with status %d", e.ExitStatus)
	} else {
		s += fmt.Sprintf(" failed: %v", e.Err)
	}
	if msg != "" {
		s += ": " + msg
	}
	return s
}

func (e *CommandError) Unwrap() error { return e.Err }

func summarize(cmd string) string {
	first, _, _ := strings.Cut(strings.TrimSpace(cmd), "\n")
	if len(first) > 120 {
		first = first[:120] + "..."
	}
	return fmt.Sprintf("%q", first)
}

// syncBuffer lets stdout and stderr copies share nothing unsafely.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Run runs cmd on the node.
func (c *Client) Run(ctx context.Context, cmd string) (string, error) {
	return c.RunWithInput(ctx, cmd, nil)
}

// newSession opens a session bounded by ctx. ssh.Client.NewSession has no
// deadline of its own: on a host that lost power or was cut off it waits
// until the kernel gives up retransmitting (about 15 minutes). On ctx's end
// the connection is closed, which unblocks it; the client is then unusable,
// as it would be anyway.
func (c *Client) newSession(ctx context.Context) (*ssh.Session, error) {
	type result struct {
		s   *ssh.Session
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := c.conn.NewSession()
		ch <- result{s, err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-ctx.Done():
		_ = c.conn.Close()
		if r := <-ch; r.s != nil {
			_ = r.s.Close()
		}
		return nil, fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
	}
}

// RunWithInput runs cmd with stdin connected to in.
func (c *Client) RunWithInput(ctx context.Context, cmd string, in io.Reader) (string, error) {
	s, err := c.newSession(ctx)
	if err != nil {
		return "", &CommandError{Target: c.target, Command: cmd, ExitStatus: -1, Err: fmt.Errorf("open session: %w", err)}
	}
	defer s.Close()
	var stdout, stderr syncBuffer
	s.Stdout, s.Stderr = &stdout, &stderr
	if in != nil {
		s.Stdin = in
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(cmd) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = s.Signal(ssh.SIGKILL)
		_ = s.Close()
		err = ctx.Err()
	}
	if err == nil {
		return stdout.String(), nil
	}
	ce := &CommandError{Target: c.target, Command: cmd, ExitStatus: -1, Stderr: stderr.String(), Err: err}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		ce.ExitStatus = ee.ExitStatus()
	}
	return stdout.String(), ce
}

// Quote returns s as one single-quoted shell word.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// RemoteSHA256 returns the hex SHA-256 of a remote file, "" if it does not
// exist.
func RemoteSHA256(ctx context.Context, r Runner, p string) (string, error) {
	out, err := r.Run(ctx, fmt.Sprintf("if [ -f %[1]s ]; then sha256sum < %[1]s; fi", Quote(p)))
	if err != nil {
		return "", err
	}
	sum, _, _ := strings.Cut(strings.TrimSpace(out), " ")
	return sum, nil
}

// uploadScript receives the content on stdin into a temporary file next to
// the target, checks its hash, sets the mode and renames it into place, so
// that a reader never sees a partial file. Exit 3: hash mismatch.
func uploadScript(p, sum string, mode os.FileMode) string {
	dir := path.Dir(p)
	return fmt.Sprintf(`set -e
f=%[1]s
tmp=%[2]s/.$(basename "$f").tmp.$$
trap 'rm -f "$tmp"' EXIT
mkdir -p %[2]s
umask 077
cat > "$tmp"
got=$(sha256sum < "$tmp" | cut -d' ' -f1)
if [ "$got" != %[3]s ]; then echo "upload of $f corrupted: sha256 $got, want %[3]s" >&2; exit 3; fi
chmod %04[4]o "$tmp"
mv -f "$tmp" "$f"
`, Quote(p), Quote(dir), sum, mode.Perm())
}

// statScript prints "<sha256> <octal mode>" for an existing file, nothing
// otherwise.
func statScript(p string) string {
	return fmt.Sprintf(`if [ -f %[1]s ]; then printf '%%s %%s\n' "$(sha256sum < %[1]s | cut -d' ' -f1)" "$(stat -c %%a %[1]s)"; fi`, Quote(p))
}

// uploadIfChanged is the shared logic of Upload and UploadFile.
func (c *Client) uploadIfChanged(ctx context.Context, p, sum string, mode os.FileMode, open func() (io.Reader, func(), error)) (bool, error) {
	if !path.IsAbs(p) {
		return false, fmt.Errorf("%s: upload: remote path %q must be absolute", c.target, p)
	}
	out, err := c.Run(ctx, statScript(p))
	if err != nil {
		return false, err
	}
	if f := strings.Fields(out); len(f) == 2 && f[0] == sum {
		if f[1] == fmt.Sprintf("%o", mode.Perm()) {
			return false, nil
		}
		if _, err := c.Run(ctx, fmt.Sprintf("chmod %04o %s", mode.Perm(), Quote(p))); err != nil {
			return false, err
		}
		return true, nil
	}
	r, closeFn, err := open()
	if err != nil {
		return false, err
	}
	defer closeFn()
	if _, err := c.RunWithInput(ctx, uploadScript(p, sum, mode), r); err != nil {
		return false, fmt.Errorf("upload %s: %w", p, err)
	}
	return true, nil
}

// Upload writes data to the remote path p atomically (temporary file, hash
// check, chmod, rename) using only sh and coreutils on the node: no scp or
// sftp. An identical file with the same mode is left alone.
func (c *Client) Upload(ctx context.Context, p string, data []byte, mode os.FileMode) (bool, error) {
	h := sha256.Sum256(data)
	return c.uploadIfChanged(ctx, p, hex.EncodeToString(h[:]), mode, func() (io.Reader, func(), error) {
		return bytes.NewReader(data), func() {}, nil
	})
}

// UploadFile streams a local file (e.g. a binary) to the remote path like
// Upload, skipping the transfer when the node already has identical
// content.
func (c *Client) UploadFile(ctx context.Context, local, p string, mode os.FileMode) (bool, error) {
	sum, err := FileSHA256(local)
	if err != nil {
		return false, err
	}
	return c.UploadFileSum(ctx, local, sum, p, mode)
}

// UploadFileSum is UploadFile for a local file whose hex sha256 the caller
// already has (one binary uploaded to many nodes is hashed once).
func (c *Client) UploadFileSum(ctx context.Context, local, sum, p string, mode os.FileMode) (bool, error) {
	return c.uploadIfChanged(ctx, p, sum, mode, func() (io.Reader, func(), error) {
		f, err := os.Open(local)
		if err != nil {
			return nil, nil, err
		}
		return f, func() { f.Close() }, nil
	})
}

// copyScript receives size bytes on stdin into a temporary file next to p,
// checks the byte count, sets the mode and renames it into place. Exit 3:
// the count is wrong.
func copyScript(p string, size int64, mode os.FileMode) string {
	return fmt.Sprintf(`set -e
f=%[1]s
tmp=%[2]s/.$(basename "$f").tmp.$$
trap 'rm -f "$tmp"' EXIT
mkdir -p %[2]s
umask 077
cat > "$tmp"
got=$(wc -c < "$tmp")
if [ "$got" -ne %[3]d ]; then echo "copy of $f incomplete: $got bytes, want %[3]d" >&2; exit 3; fi
chmod %04[4]o "$tmp"
mv -f "$tmp" "$f"
`, Quote(p), Quote(path.Dir(p)), size, mode.Perm())
}

// CopyFile streams a local file to the remote path p in one SSH session
// (a temporary file next to p, renamed into place once all of it arrived),
// always, and without hashing it on either side: SSH's integrity check
// covers the transfer and the byte count is checked at the end. It is for
// large files that carry a check of their own, which whoever reads them on
// the node verifies (an etcd snapshot's sha256 trailer, which etcd's
// restore checks): a sha256 pass over a gigabyte, on each node, costs
// seconds that such a file need not pay twice. Upload and UploadFile are
// for everything else.
func (c *Client) CopyFile(ctx context.Context, local, p string, mode os.FileMode) error {
	if !path.IsAbs(p) {
		return fmt.Errorf("%s: copy: remote path %q must be absolute", c.target, p)
	}
	f, err := os.Open(local)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if _, err := c.RunWithInput(ctx, copyScript(p, fi.Size(), mode), io.LimitReader(f, fi.Size())); err != nil {
		return fmt.Errorf("copy %s: %w", p, err)
	}
	return nil
}

// FileSHA256 returns the hex SHA-256 of a local file.
func FileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
