package snapshotcmd

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/dustin/go-humanize"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/snapshot"
)

// printers are the --write-out formats of `snapshot status`, each printing
// what etcdutl prints in that format.
var printers = map[string]func(io.Writer, snapshot.Status) error{
	"simple": printSimple,
	"table":  printTable,
	"json":   printJSON,
}

func statusRow(st snapshot.Status) []string {
	return []string{
		fmt.Sprintf("%x", st.Hash),
		fmt.Sprint(st.Revision),
		fmt.Sprint(st.TotalKey),
		humanize.Bytes(uint64(st.TotalSize)),
		st.Version,
	}
}

var statusHeader = []string{"HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE", "VERSION"}

func printSimple(w io.Writer, st snapshot.Status) error {
	_, err := fmt.Fprintln(w, strings.Join(statusRow(st), ", "))
	return err
}

func printJSON(w io.Writer, st snapshot.Status) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// printTable draws an ASCII table: a centred header and right-aligned
// cells, as etcdctl's tables are.
func printTable(w io.Writer, st snapshot.Status) error {
	row := statusRow(st)
	widths := make([]int, len(statusHeader))
	for i := range statusHeader {
		widths[i] = max(len(statusHeader[i]), len(row[i]))
	}
	var b strings.Builder
	rule := func() {
		for _, n := range widths {
			b.WriteString("+" + strings.Repeat("-", n+2))
		}
		b.WriteString("+\n")
	}
	line := func(cells []string, centre bool) {
		for i, c := range cells {
			pad := widths[i] - len(c)
			left := pad
			if centre {
				left = pad / 2
			}
			b.WriteString("| " + strings.Repeat(" ", left) + c + strings.Repeat(" ", pad-left) + " ")
		}
		b.WriteString("|\n")
	}
	rule()
	line(statusHeader, true)
	rule()
	line(row, false)
	rule()
	_, err := io.WriteString(w, b.String())
	return err
}
