package shards

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// abortTimeout bounds the clean-up request of a failed multipart upload.
const abortTimeout = 30 * time.Second

// abortMultipart aborts the S3 multipart upload that a failed upload (err)
// left in progress, if any. The transfer manager tries to abort it itself,
// but with the context of the upload: when that context was cancelled, the
// abort fails too and the parts stay (invisible, but billed until a
// lifecycle rule removes them). This retries it with a fresh context. Only
// the upload id named by err is aborted, never another writer's upload of
// the same key. It returns the abort's error, if any, for the message.
func (s *Store) abortMultipart(ctx context.Context, key string, err error) error {
	var mue transfermanager.MultipartUploadError
	if !errors.As(err, &mue) || mue.UploadID() == "" {
		return nil
	}
	var client *s3.Client
	if !s.bucket.As(&client) {
		return nil
	}
	u, perr := url.Parse(s.loc.BucketURL)
	if perr != nil {
		return perr
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	_, aerr := client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(u.Host),
		Key:      aws.String(key),
		UploadId: aws.String(mue.UploadID()),
	})
	var gone *types.NoSuchUpload
	if errors.As(aerr, &gone) {
		return nil // aborted or completed meanwhile
	}
	if aerr != nil {
		return fmt.Errorf("abort multipart upload %s: %w", mue.UploadID(), aerr)
	}
	return nil
}
