package shards

import (
	"fmt"
	"strings"
)

// ErrObjectStorage is returned for s3://, gs://, azblob:// and other URLs
// where only a file system path is taken (splash encode and finalize take
// URLs: see ParseLocation and Store).
var ErrObjectStorage = fmt.Errorf("object storage URLs are not taken here: give a local or mounted file system path")

// CheckLocalPath refuses a URL where a file system path is expected, so
// that "s3://bucket/x" is not taken for a relative directory "s3:" and
// written to locally. flag names the option for the message. file:// URLs
// are refused too: give the path itself.
func CheckLocalPath(flag, path string) error {
	if i := strings.Index(path, "://"); i > 0 && !strings.ContainsAny(path[:i], "/\\*?[") {
		return fmt.Errorf("%s %s: %w", flag, path, ErrObjectStorage)
	}
	return nil
}
