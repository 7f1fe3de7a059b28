package shards

import (
	"fmt"
	"strings"
)

// ErrObjectStorage is returned for s3://, gs://, azblob:// and other URLs:
// splash reads and writes local (or mounted) file systems only, so far.
var ErrObjectStorage = fmt.Errorf("object storage URLs are not supported yet: copy the shards to a local or mounted file system (for example a ReadWriteMany volume in Kubernetes) and give its path")

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
