package shards

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// SchemaVersion is the version of the impact shard format written by this
// package (design.md §5). It is stored under the key MetaSchemaVersion.
const SchemaVersion = 1

// Column names of an impact shard.
const (
	ColDocID     = "doc_id"
	ColTermIDs   = "term_ids"
	ColWeights   = "weights"
	ColImpacts   = "impacts"
	ColNumTokens = "num_tokens"
	ColTruncated = "truncated"
	// ColNumWindows is optional: shards encoded with --long-docs window
	// have it (windows the model saw for the row's document; 0 for an
	// empty document), others do not.
	ColNumWindows = "num_windows"
)

// listElement is the name of list elements. pqarrow names Parquet list
// elements "element" when it stores the Arrow schema; both formats use the
// same name so that a shard reads back with the same schema either way.
const listElement = "element"

// Key-value metadata keys. They are stable: readers of impact shards rely on
// them. All values are strings; numbers are in Go's shortest decimal form.
const (
	MetaSchemaVersion   = "splash.schema_version"   // "1"
	MetaSplashVersion   = "splash.version"          // version of splash that wrote the shard
	MetaModelSHA256     = "splash.model.sha256"     // sha256 (hex) of the model file
	MetaTokenizerSHA256 = "splash.tokenizer.sha256" // sha256 (hex) of tokenizer.json
	MetaVocabSize       = "splash.vocab_size"       // number of vocabulary entries
	MetaMaxLength       = "splash.max_length"       // tokens per document, specials included
	MetaPooling         = "splash.pooling"          // "max" or "sum"
	MetaMinWeight       = "splash.min_weight"       // weights kept are > this
	MetaTopK            = "splash.top_k"            // 0: all terms kept
	MetaScale           = "splash.scale"            // impacts = round(weight * scale)
	MetaSourcePath      = "splash.source.path"      // the input shard, as given
	MetaSourceSize      = "splash.source.size"      // its size in bytes
	MetaSourceSHA256    = "splash.source.sha256"    // its sha256 (hex)
)

// fixedKeys returns the Meta* keys in the order KeyValues writes them.
func fixedKeys() []string {
	return []string{
		MetaSchemaVersion, MetaSplashVersion, MetaModelSHA256, MetaTokenizerSHA256,
		MetaVocabSize, MetaMaxLength, MetaPooling, MetaMinWeight, MetaTopK, MetaScale,
		MetaSourcePath, MetaSourceSize, MetaSourceSHA256,
	}
}

// isFixedKey reports whether k is one of the Meta* keys.
func isFixedKey(k string) bool { return slices.Contains(fixedKeys(), k) }

// Metadata is the key-value metadata of an impact shard. The caller fills it;
// KeyValues turns it into the stored keys (the Meta* constants).
type Metadata struct {
	SplashVersion   string
	ModelSHA256     string
	TokenizerSHA256 string
	VocabSize       int
	MaxLength       int
	Pooling         string
	MinWeight       float32
	TopK            int
	Scale           float32
	SourcePath      string
	SourceSize      int64
	SourceSHA256    string
	// Extra holds further keys, written in sorted order after the fixed ones.
	// They must not collide with the Meta* keys.
	Extra map[string]string
}

// KeyValues returns the metadata as parallel key and value lists: the fixed
// keys in the order of the Meta* constants, then Extra's keys sorted. It fails
// when an Extra key is empty or reserved.
func (m Metadata) KeyValues() (keys, values []string, err error) {
	keys = fixedKeys()
	values = []string{
		strconv.Itoa(SchemaVersion),
		m.SplashVersion,
		m.ModelSHA256,
		m.TokenizerSHA256,
		strconv.Itoa(m.VocabSize),
		strconv.Itoa(m.MaxLength),
		m.Pooling,
		formatFloat32(m.MinWeight),
		strconv.Itoa(m.TopK),
		formatFloat32(m.Scale),
		m.SourcePath,
		strconv.FormatInt(m.SourceSize, 10),
		m.SourceSHA256,
	}
	for _, k := range slices.Sorted(maps.Keys(m.Extra)) {
		if k == "" || isFixedKey(k) || strings.HasPrefix(k, "ARROW:") {
			return nil, nil, fmt.Errorf("metadata: extra key %q is empty or reserved", k)
		}
		keys = append(keys, k)
		values = append(values, m.Extra[k])
	}
	return keys, values, nil
}

// Map returns the key-value pairs of KeyValues as a map, e.g. for the
// settings of a Manifest.
func (m Metadata) Map() (map[string]string, error) {
	keys, values, err := m.KeyValues()
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(keys))
	for i, k := range keys {
		out[k] = values[i]
	}
	return out, nil
}

// ParseMetadata is the inverse of KeyValues: it reads the Meta* keys of kv
// (as returned by ShardMetadata) and puts every other key in Extra. A missing
// fixed key leaves its field zero; a malformed number, or a schema version
// other than SchemaVersion, is an error.
func ParseMetadata(kv map[string]string) (Metadata, error) {
	var m Metadata
	if v, ok := kv[MetaSchemaVersion]; ok && v != strconv.Itoa(SchemaVersion) {
		return m, fmt.Errorf("%w: schema version %q, this splash reads %d", ErrInvalidShard, v, SchemaVersion)
	}
	var errs []string
	atoi := func(key string, dst *int) {
		if v, ok := kv[key]; ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s=%q", key, v))
			}
			*dst = n
		}
	}
	float := func(key string, dst *float32) {
		if v, ok := kv[key]; ok {
			f, err := strconv.ParseFloat(v, 32)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s=%q", key, v))
			}
			*dst = float32(f)
		}
	}
	m.SplashVersion = kv[MetaSplashVersion]
	m.ModelSHA256 = kv[MetaModelSHA256]
	m.TokenizerSHA256 = kv[MetaTokenizerSHA256]
	atoi(MetaVocabSize, &m.VocabSize)
	atoi(MetaMaxLength, &m.MaxLength)
	m.Pooling = kv[MetaPooling]
	float(MetaMinWeight, &m.MinWeight)
	atoi(MetaTopK, &m.TopK)
	float(MetaScale, &m.Scale)
	m.SourcePath = kv[MetaSourcePath]
	if v, ok := kv[MetaSourceSize]; ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s=%q", MetaSourceSize, v))
		}
		m.SourceSize = n
	}
	m.SourceSHA256 = kv[MetaSourceSHA256]
	for k, v := range kv {
		if !isFixedKey(k) {
			if m.Extra == nil {
				m.Extra = map[string]string{}
			}
			m.Extra[k] = v
		}
	}
	if len(errs) > 0 {
		return m, fmt.Errorf("%w: malformed metadata %s", ErrInvalidShard, strings.Join(errs, ", "))
	}
	return m, nil
}

func formatFloat32(f float32) string { return strconv.FormatFloat(float64(f), 'g', -1, 32) }

// ArrowSchema returns the Arrow schema of an impact shard (schema version 1)
// carrying the metadata m.
func ArrowSchema(m Metadata) (*arrow.Schema, error) {
	keys, values, err := m.KeyValues()
	if err != nil {
		return nil, err
	}
	md := arrow.NewMetadata(keys, values)
	return arrow.NewSchema(shardFields(), &md), nil
}

// arrowSchemaWithWindows is ArrowSchema plus the optional num_windows column.
func arrowSchemaWithWindows(m Metadata) (*arrow.Schema, error) {
	s, err := ArrowSchema(m)
	if err != nil {
		return nil, err
	}
	md := s.Metadata()
	fields := append(shardFields(), arrow.Field{Name: ColNumWindows, Type: arrow.PrimitiveTypes.Int32, Nullable: true})
	return arrow.NewSchema(fields, &md), nil
}

func shardFields() []arrow.Field {
	list := func(t arrow.DataType) arrow.DataType {
		return arrow.ListOfField(arrow.Field{Name: listElement, Type: t, Nullable: false})
	}
	return []arrow.Field{
		{Name: ColDocID, Type: arrow.BinaryTypes.String, Nullable: false},
		{Name: ColTermIDs, Type: list(arrow.PrimitiveTypes.Uint32), Nullable: false},
		{Name: ColWeights, Type: list(arrow.PrimitiveTypes.Float32), Nullable: true},
		{Name: ColImpacts, Type: list(arrow.PrimitiveTypes.Uint16), Nullable: true},
		{Name: ColNumTokens, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: ColTruncated, Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	}
}
