package shards

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// ShardSchema describes an impact shard's columns as "name: type" strings,
// read from the file itself (the Arrow schema stored in a Parquet file, or
// the Arrow IPC schema), with "not null" for non-nullable fields.
func ShardSchema(path string) ([]string, error) {
	sf, err := openShard(path, memory.DefaultAllocator)
	if err != nil {
		return nil, err
	}
	defer sf.close()
	var fields []string
	err = safely(ErrInvalidShard, func() error {
		switch sf.format {
		case FormatParquet:
			s, err := pqarrow.FromParquet(sf.pq.MetaData().Schema, nil, sf.pq.MetaData().KeyValueMetadata())
			if err != nil {
				return fmt.Errorf("%w: %w", ErrInvalidShard, err)
			}
			for _, f := range s.Fields() {
				fields = append(fields, describeField(f.Name, f.Type.String(), f.Nullable))
			}
		case FormatArrow:
			for _, f := range sf.ipc.Schema().Fields() {
				fields = append(fields, describeField(f.Name, f.Type.String(), f.Nullable))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return fields, nil
}

func describeField(name, typ string, nullable bool) string {
	s := name + ": " + strings.ReplaceAll(typ, "element: ", "")
	if !nullable {
		s += " not null"
	}
	return s
}
