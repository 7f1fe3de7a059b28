// Package export writes impact shards in the input formats of offline index
// builders: Anserini, Seismic, Elasticsearch/OpenSearch and Qdrant. (CIFF,
// for PISA and others, is package shards/ciff.)
//
// Documents are written in the order of the shard paths and, within a shard,
// in row order, one row at a time through a buffered writer: memory does not
// grow with the corpus. ResolveInput turns an impact shard file or an output
// directory of splash encode into that list of shards (a directory's shards
// are those of its manifests, sorted by name, each verified first) and reads
// the vocabulary (_vocabulary.parquet) beside them. WriteFile writes to a temp
// file in the destination's directory and renames it into place; Write writes
// to any io.Writer (standard output, say).
//
// # Formats
//
// anserini: Anserini's JsonVectorCollection, JSON Lines, one document a line:
//
//	{"id":"DOC","contents":"","vector":{"TOKEN":IMPACT,...}}
//
// for IndexCollection -collection JsonVectorCollection -impact -pretokenized.
// IMPACT = round(weight × scale), half away from zero, written as an integer
// (Anserini reads the values with asInt, which would truncate a fraction).
// The scale is Options.Scale or, when that is 0, the shards' splash.scale
// metadata (normally 100); shards that disagree on it are an error. Terms
// whose impact rounds to 0 are left out (and counted in Stats.Dropped): to
// Anserini an impact is a term frequency, and 0 is no occurrence. An impact
// above 2^31-1 (Java's int) is an error, never truncated.
//
// anserini-topics: the queries of Anserini's SearchCollection -topicReader
// TsvString -impact -pretokenized, one query a line (for the shards of
// encoded queries, splash encode --queries):
//
//	QID<TAB>TOKEN TOKEN TOKEN ...
//
// Each term's token is repeated IMPACT times, IMPACT computed as for
// anserini (same scale rule, zero impacts left out and counted in
// Stats.Dropped), in term id order, separated by single spaces: Anserini's
// pretokenized query analyzer splits the text at white space and weighs a
// token by its count, so the query's score for a document is the same dot
// product of impacts that the anserini documents carry. Tokens are escaped
// as for anserini (see Tokens): the same vocabulary entry is the same string
// in both files. An impact above 65536 (2^16) is an error rather than a line
// of that many repeats. A query without a token of impact ≥ 1 is left out and
// counted in Stats.Skipped (the TsvString reader fails on a line without a
// query after the tab); Anserini then returns nothing for it, as it would
// for an empty query. The reader splits lines at \n and \r, trims each line
// and splits it at tabs, and keeps one query per QID, so a QID that is
// empty, holds a tab or a line break, starts or ends with a character ≤
// U+0020, or repeats an earlier QID is an error.
//
// seismic: Seismic's binary "inner" format, little-endian: a u32 document
// count, then per document a u32 length n, n u32 component ids (the term ids,
// ascending) and n f32 values (the weights, exactly as stored). The format
// carries no document ids: WriteFile writes them to PATH.ids, one doc_id a
// line in the same order (line i names document i), so a doc_id containing a
// line break is an error. The count is known before writing: it is the sum of
// the shards' row counts (ShardRows; every row is a document).
//
// seismic-jsonl: Seismic's JSON Lines input (SeismicIndex.build):
//
//	{"id":"DOC","content":"","vector":{"TOKEN":WEIGHT,...}}
//
// esbulk: the Elasticsearch/OpenSearch bulk API's NDJSON, two lines a
// document:
//
//	{"index":{"_index":"INDEX","_id":"DOC"}}
//	{"FIELD":{"TOKEN":WEIGHT,...}}
//
// INDEX is Options.Index (default "splash"), FIELD Options.Field (default
// "splade"). Create the index first with FIELD mapped as rank_features:
//
//	PUT INDEX
//	{"mappings":{"properties":{"FIELD":{"type":"rank_features"}}}}
//
// (Elasticsearch 8.11+ also accepts "sparse_vector" there.) Lucene's
// FeatureField refuses values that are not positive normal floats: weights
// below 2^-126 (float32 subnormals) are left out and counted in
// Stats.Dropped. Both field types store about 9 significant bits of each
// value. A doc_id over 512 bytes, which Elasticsearch refuses as _id, is an
// error.
//
// qdrant: JSON Lines of Qdrant points, each with a named sparse vector:
//
//	{"id":ID,"vector":{"FIELD":{"indices":[TERM,...],"values":[WEIGHT,...]}},"payload":{"doc_id":"DOC"}}
//
// FIELD is Options.Field (default "splade"), to be declared in the
// collection's sparse_vectors config. The lines are the points of
// PUT /collections/NAME/points ({"points":[line, line, ...]}), in batches of
// the user's choice. Qdrant accepts only unsigned 64-bit integers and UUIDs as
// point ids, so ID is the doc_id itself when it is a decimal integer without
// a sign or leading zeros (0 included) below 2^64, and otherwise the
// name-based UUID (version 5, SHA-1) of the doc_id's bytes in the URL
// namespace (Python: uuid.uuid5(uuid.NAMESPACE_URL, doc_id)), as a string.
// The payload keeps the doc_id either way.
//
// In every JSON format the terms appear in ascending term id order, the
// order of the shard, and weights are written in the shortest form that
// reads back as the same float32 (strconv.FormatFloat(w, 'g', -1, 32)): they
// round-trip bit for bit. A doc_id that is not valid UTF-8 cannot be carried
// by JSON and is an error.
//
// # Empty vectors
//
// A document whose vector is empty (or becomes empty once zero impacts or
// subnormal weights are left out) is still written, so that every format
// holds every document, in order: with an empty "vector" object (anserini,
// seismic-jsonl), an empty FIELD object (esbulk), empty indices and values
// (qdrant; accepted since Qdrant 1.7) or a length of 0 (seismic). Anserini
// counts such a document as empty and does not index it (its document
// generators throw EmptyDocumentException when there is nothing to index);
// Elasticsearch indexes it without features; no engine can ever retrieve it.
// Stats.Empty counts them.
//
// # Tokens
//
// The token formats (anserini, anserini-topics, seismic-jsonl, esbulk) write vocabulary
// strings as keys. A token is written as it is unless it holds something the
// target cannot carry; such bytes are percent-encoded as %XX (two upper-case
// hex digits per byte of their UTF-8 encoding):
//
//   - in every token format: bytes that are not valid UTF-8 (JSON cannot
//     carry them);
//   - anserini and anserini-topics: white space (Go's unicode.IsSpace, plus U+001C to U+001F,
//     which Java's Character.isWhitespace also counts): Anserini splits its
//     pseudo-documents on white space;
//   - esbulk: '.', which rank_features and sparse_vector fields refuse in
//     feature names;
//   - and, to keep the rule reversible, a '%' that is followed by two hex
//     digits (it becomes %25).
//
// Decoding replaces every %XX (X a hex digit, either case) by the byte 0xXX
// and keeps everything else. Tokens of real vocabularies (BERT's "%" and
// "##s" included) come out unchanged in the anserini, anserini-topics and
// seismic-jsonl formats; WordPiece's "##" continuation prefix is kept as it
// is (the token "##ing" is written "##ing"). Queries must be escaped with the same rule (Format.EscapeToken)
// to match. The rule is injective, so two tokens collide only when the
// vocabulary repeats a string; a document holding two such terms is an
// error rather than a JSON object with a repeated key.
package export
