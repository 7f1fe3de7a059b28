package shards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ManifestSchemaVersion is the version of the manifest format.
const ManifestSchemaVersion = 1

// maxManifestSize bounds what ReadManifest reads.
const maxManifestSize = 1 << 20

// Manifest is the commit marker of one impact shard, written as
// _manifest.<base>.json after the shard itself. A shard counts as done only
// when its manifest exists and VerifyManifest accepts it.
type Manifest struct {
	SchemaVersion int               `json:"schema_version"`
	SplashVersion string            `json:"splash_version"`
	Input         ManifestInput     `json:"input"`
	Settings      map[string]string `json:"settings"`
	Output        ManifestOutput    `json:"output"`
	// Rejected names the dead-letter file of the input rows that were not
	// encoded; absent when every row was.
	Rejected *ManifestRejected `json:"rejected,omitempty"`
	// Stats describes the run that encoded the shard; absent in manifests
	// written before it existed. It is informative: VerifyManifest ignores it.
	Stats     *ManifestStats `json:"stats,omitempty"`
	CreatedAt time.Time      `json:"created_at"`
}

// ManifestStats is what the encoder measured while it encoded one shard.
type ManifestStats struct {
	Documents    int64   `json:"documents"`     // rows encoded (Output.Rows)
	Tokens       int64   `json:"tokens"`        // real tokens run through the model
	PaddedTokens int64   `json:"padded_tokens"` // positions run, padding included
	Batches      int64   `json:"batches"`       // forward passes
	Truncated    int64   `json:"truncated"`     // documents cut at the max length
	Empty        int64   `json:"empty"`         // documents with an empty vector
	Seconds      float64 `json:"seconds"`       // wall time from the shard's first encoded row reaching the writer to its commit
}

// ManifestInput identifies the input shard.
type ManifestInput struct {
	Path   string    `json:"path"`   // as given to splash
	Size   int64     `json:"size"`   // bytes
	MTime  time.Time `json:"mtime"`  // modification time
	SHA256 string    `json:"sha256"` // lower-case hex; may be empty when not computed
	Rows   int64     `json:"rows"`   // rows in the input: output rows + rejected rows
	// Part is the part of a text input that the shard holds, when the
	// input was cut into parts; absent otherwise.
	Part *ManifestPart `json:"part,omitempty"`
}

// ManifestPart is one part of a text input cut into parts: the lines that
// start at byte offsets [Offset, End) of the file.
type ManifestPart struct {
	Index     int   `json:"index"`      // from 0
	Count     int   `json:"count"`      // parts of the input
	Offset    int64 `json:"offset"`     // first byte of the range
	End       int64 `json:"end"`        // byte after the range
	FirstLine int64 `json:"first_line"` // line number of the part's first line, from 1
}

// ManifestOutput identifies the impact shard.
type ManifestOutput struct {
	Path   string `json:"path"`   // file name, relative to the output directory
	Format string `json:"format"` // "parquet" or "arrow"
	Rows   int64  `json:"rows"`
	Size   int64  `json:"size"`   // bytes
	SHA256 string `json:"sha256"` // lower-case hex
}

// ManifestName returns the manifest file name of the shard with base name base.
func ManifestName(base string) string { return "_manifest." + base + ".json" }

// ListManifests returns the base names of the shards that have a manifest
// file (_manifest.BASE.json) in outDir, sorted; Store.ListManifests is its
// object storage twin.
func ListManifests(outDir string) ([]string, error) {
	found, err := filepath.Glob(filepath.Join(outDir, ManifestName("*")))
	if err != nil {
		return nil, fmt.Errorf("list manifests in %s: %w", outDir, err)
	}
	bases := make([]string, len(found))
	for i, p := range found {
		bases[i] = strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "_manifest."), ".json")
	}
	return bases, nil
}

// NewManifestOutput describes a committed shard for its manifest.
func NewManifestOutput(out Committed, format Format) ManifestOutput {
	return ManifestOutput{
		Path:   filepath.Base(out.Path),
		Format: format.String(),
		Rows:   out.Rows,
		Size:   out.Size,
		SHA256: out.SHA256,
	}
}

// validate checks the fields a manifest must have and returns the output's
// format and base name.
func (m *Manifest) validate() (Format, string, error) {
	if m.SchemaVersion != ManifestSchemaVersion {
		return 0, "", fmt.Errorf("%w: schema_version %d, want %d", ErrInvalidManifest, m.SchemaVersion, ManifestSchemaVersion)
	}
	if m.Input.Path == "" {
		return 0, "", fmt.Errorf("%w: no input.path", ErrInvalidManifest)
	}
	if m.Input.Size < 0 {
		return 0, "", fmt.Errorf("%w: input.size %d", ErrInvalidManifest, m.Input.Size)
	}
	if m.Input.SHA256 != "" && !isSHA256(m.Input.SHA256) {
		return 0, "", fmt.Errorf("%w: input.sha256 %q is not a lower-case hex sha256", ErrInvalidManifest, m.Input.SHA256)
	}
	if m.CreatedAt.IsZero() {
		return 0, "", fmt.Errorf("%w: no created_at", ErrInvalidManifest)
	}
	format, base, err := m.Output.validate()
	if err != nil {
		return 0, "", err
	}
	if r := m.Rejected; r != nil {
		if r.Path != RejectedName(base) {
			return 0, "", fmt.Errorf("%w: rejected.path %q, want %q", ErrInvalidManifest, r.Path, RejectedName(base))
		}
		if r.Rows <= 0 || r.Size <= 0 || !isSHA256(r.SHA256) {
			return 0, "", fmt.Errorf("%w: rejected: rows %d, size %d, sha256 %q", ErrInvalidManifest, r.Rows, r.Size, r.SHA256)
		}
	}
	if p := m.Input.Part; p != nil && (p.Index < 0 || p.Index >= p.Count || p.Offset < 0 || p.End <= p.Offset || p.End > m.Input.Size || p.FirstLine < 1) {
		return 0, "", fmt.Errorf("%w: input.part: index %d of %d, bytes %d-%d of %d, first line %d", ErrInvalidManifest, p.Index, p.Count, p.Offset, p.End, m.Input.Size, p.FirstLine)
	}
	if m.Input.Rows < 0 {
		return 0, "", fmt.Errorf("%w: input.rows %d", ErrInvalidManifest, m.Input.Rows)
	}
	return format, base, nil
}

// validate checks the output fields and returns the format and base name.
func (o *ManifestOutput) validate() (Format, string, error) {
	format, err := ParseFormat(o.Format)
	if err != nil {
		return 0, "", fmt.Errorf("%w: output.format: %w", ErrInvalidManifest, err)
	}
	base, ok := strings.CutSuffix(o.Path, format.Ext())
	if !ok {
		return 0, "", fmt.Errorf("%w: output.path %q does not end in %s", ErrInvalidManifest, o.Path, format.Ext())
	}
	if err := checkBase(base); err != nil {
		return 0, "", fmt.Errorf("%w: output.path: %w", ErrInvalidManifest, err)
	}
	if o.Rows < 0 || o.Size < 0 {
		return 0, "", fmt.Errorf("%w: output rows %d, size %d", ErrInvalidManifest, o.Rows, o.Size)
	}
	if !isSHA256(o.SHA256) {
		return 0, "", fmt.Errorf("%w: output.sha256 %q is not a lower-case hex sha256", ErrInvalidManifest, o.SHA256)
	}
	return format, base, nil
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// WriteManifest writes outDir/_manifest.<base>.json atomically, base being
// m.Output.Path without its extension. Write it after Commit: it is the
// shard's commit marker. A zero SchemaVersion is set to
// ManifestSchemaVersion and a zero CreatedAt to the current time (UTC).
func WriteManifest(outDir string, m Manifest) error {
	if m.SchemaVersion == 0 {
		m.SchemaVersion = ManifestSchemaVersion
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = time.Now().UTC()
	}
	_, base, err := m.validate()
	if err != nil {
		return fmt.Errorf("write manifest in %s: %w", outDir, err)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("write manifest in %s: %w", outDir, err)
	}
	data = append(data, '\n')
	return writeFileAtomic(outDir, ManifestName(base), func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// ReadManifest reads and checks a manifest: strict JSON (unknown fields and
// trailing data are errors), supported schema version, well-formed fields.
// Errors about the content wrap ErrInvalidManifest.
func ReadManifest(path string) (Manifest, error) {
	f, err := openInDir(filepath.Dir(path), filepath.Base(path))
	if err != nil {
		return Manifest{}, fmt.Errorf("read manifest %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxManifestSize+1))
	if err != nil {
		return Manifest{}, fmt.Errorf("read manifest %s: %w", path, err)
	}
	if len(data) > maxManifestSize {
		return Manifest{}, fmt.Errorf("read manifest %s: %w: larger than %d bytes", path, ErrInvalidManifest, maxManifestSize)
	}
	m, err := parseManifestSafely(data)
	if err != nil {
		return Manifest{}, fmt.Errorf("read manifest %s: %w", path, err)
	}
	return m, nil
}

// parseManifestSafely is parseManifest with a panic of the decoder turned
// into ErrInvalidManifest: manifests are foreign bytes.
func parseManifestSafely(data []byte) (m Manifest, err error) {
	err = safely(ErrInvalidManifest, func() error {
		var err error
		m, err = parseManifest(data)
		return err
	})
	return m, err
}

func parseManifest(data []byte) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("%w: %w", ErrInvalidManifest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Manifest{}, fmt.Errorf("%w: data after the JSON object", ErrInvalidManifest)
	}
	if _, _, err := m.validate(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// VerifyManifest checks that the output named by m.Output, in outDir, has
// the manifest's size, sha256 (re-hashed from disk), format and row count.
// Mismatches wrap ErrMismatch. Only m.Output is used (ReadManifest has
// checked the rest).
func VerifyManifest(outDir string, m Manifest) error {
	format, _, err := m.Output.validate()
	if err != nil {
		return fmt.Errorf("verify in %s: %w", outDir, err)
	}
	path := filepath.Join(outDir, m.Output.Path)
	sum, size, err := fileSHA256In(outDir, m.Output.Path)
	if err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	if size != m.Output.Size {
		return fmt.Errorf("verify %s: %w: size %d, manifest says %d", path, ErrMismatch, size, m.Output.Size)
	}
	if sum != m.Output.SHA256 {
		return fmt.Errorf("verify %s: %w: sha256 %s, manifest says %s", path, ErrMismatch, sum, m.Output.SHA256)
	}
	sf, err := openShardIn(outDir, m.Output.Path, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer sf.close()
	if sf.format != format {
		return fmt.Errorf("verify %s: %w: an %s file, manifest says %s", path, ErrMismatch, sf.format, format)
	}
	rows, err := sf.numRows()
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if rows != m.Output.Rows {
		return fmt.Errorf("verify %s: %w: %d rows, manifest says %d", path, ErrMismatch, rows, m.Output.Rows)
	}
	if r := m.Rejected; r != nil {
		rpath := filepath.Join(outDir, r.Path)
		sum, size, err := fileSHA256In(outDir, r.Path)
		if err != nil {
			return fmt.Errorf("verify %s: %w", rpath, err)
		}
		if size != r.Size || sum != r.SHA256 {
			return fmt.Errorf("verify %s: %w: size %d sha256 %s, manifest says %d and %s", rpath, ErrMismatch, size, sum, r.Size, r.SHA256)
		}
	}
	return nil
}

// VerifyShard reads outDir/_manifest.<base>.json and verifies the output it
// names. A nil error means the shard is done; an error wrapping
// fs.ErrNotExist means it has no manifest (not done, or never started).
func VerifyShard(outDir, base string) (Manifest, error) {
	m, err := ReadManifest(filepath.Join(outDir, ManifestName(base)))
	if err != nil {
		return Manifest{}, err
	}
	if _, b, _ := m.validate(); b != base {
		return Manifest{}, fmt.Errorf("verify %s: %w: manifest names output %q", filepath.Join(outDir, ManifestName(base)), ErrMismatch, m.Output.Path)
	}
	if err := VerifyManifest(outDir, m); err != nil {
		return Manifest{}, err
	}
	return m, nil
}
