package shards

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// fullDisk passes the first left bytes to the file, then fails every write
// the way a full file system does (ENOSPC, naming the file).
type fullDisk struct {
	w    io.Writer
	path string
	left int64
}

func (d *fullDisk) Write(p []byte) (int, error) {
	if int64(len(p)) <= d.left {
		d.left -= int64(len(p))
		return d.w.Write(p)
	}
	n, err := d.w.Write(p[:d.left])
	d.left -= int64(n)
	if err == nil {
		err = &fs.PathError{Op: "write", Path: d.path, Err: syscall.ENOSPC}
	}
	return n, err
}

func diskFullAfter(n int64) func(io.Writer) io.Writer {
	return func(w io.Writer) io.Writer { return &fullDisk{w: w, path: w.(*os.File).Name(), left: n} }
}

// TestWriterDiskFull makes the data file's writes fail with ENOSPC after n
// bytes: Write or Commit fails with an error naming the shard and "no space
// left on device", no file has the final name, the temp file is gone, the
// Arrow memory is released (Arrow IPC), and a new writer then succeeds.
func TestWriterDiskFull(t *testing.T) {
	rows := testRows(12000, 9) // over the 1 MiB write buffer: failures surface in Write too
	for _, format := range []Format{FormatParquet, FormatArrow} {
		// The size of the complete shard, to fail at its start, middle and end.
		full := writeShard(t, t.TempDir(), "docs", format, rows, WriterOptions{BatchRows: 100, RowGroupRows: 1000})
		for _, n := range []int64{0, 4, full.Size / 2, full.Size - 1} {
			t.Run(fmt.Sprintf("%s/after_%d", format, n), func(t *testing.T) {
				dir := t.TempDir()
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				if format == FormatArrow {
					// Not for Parquet: arrow-go v18.8's pqarrow FileWriter.Close
					// returns early when the row group's Close fails and never
					// releases its buffers (garbage collected with the default
					// Go allocator, which the job uses).
					defer mem.AssertSize(t, 0)
				}
				opts := WriterOptions{BatchRows: 100, RowGroupRows: 1000, Allocator: mem, wrapFile: diskFullAfter(n)}
				w, err := NewWriter(dir, "docs", format, testMetadata(), opts)
				if err != nil {
					t.Fatal(err)
				}
				defer w.Abort()
				var werr error
				for _, r := range rows {
					if werr = w.Write(r); werr != nil {
						break
					}
				}
				if werr == nil {
					_, werr = w.Commit()
				} else if _, err := w.Commit(); err == nil {
					t.Fatal("Commit after a failed Write succeeded")
				}
				if werr == nil {
					t.Fatal("the shard was committed on a full disk")
				}
				msg := werr.Error()
				t.Log(msg)
				if !strings.Contains(msg, "no space left on device") || !strings.Contains(msg, filepath.Join(dir, "docs"+format.Ext())) {
					t.Errorf("error %q does not name the shard and the full disk", msg)
				}
				if !errors.Is(werr, syscall.ENOSPC) {
					t.Errorf("error %q does not wrap ENOSPC", msg)
				}
				if names := dirNames(t, dir); len(names) != 0 {
					t.Errorf("after the failure the directory holds %v, want nothing", names)
				}
				// Space again: a new writer succeeds with the same rows.
				out := writeShard(t, dir, "docs", format, rows, WriterOptions{BatchRows: 100, RowGroupRows: 1000})
				if out.SHA256 != full.SHA256 || len(readShardRows(t, out.Path)) != len(rows) {
					t.Errorf("the shard written after the failure differs: %+v vs %+v", out, full)
				}
				if names := dirNames(t, dir); !slices.Equal(names, []string{"docs" + format.Ext()}) {
					t.Errorf("after the re-run the directory holds %v", names)
				}
			})
		}
	}
}
