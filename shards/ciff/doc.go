// Package ciff exports impact shards as a CIFF file (the Common Index File
// Format of Lin et al., https://github.com/osirrc/ciff), which PISA
// (ciff2pisa) and Anserini import, and reads CIFF streams back.
//
// # Format
//
// A CIFF file is a sequence of protobuf messages, each preceded by its
// length as a varint (protobuf's writeDelimitedTo framing): one Header, then
// Header.num_postings_lists PostingsList messages, then Header.num_docs
// DocRecord messages. The message types are generated into package ciffpb
// from proto/CommonIndexFileFormat.proto.
//
// # What Write exports
//
//   - Docids are dense ordinals 0..N-1: the rows of the shards in the order
//     of the paths given, and in row order within each shard.
//   - A posting's tf is the term's impact: the stored impacts column, or
//     round(weight*Options.Scale) (half away from zero) when Scale is set.
//     Postings whose tf is 0 are dropped: CIFF has no use for them and
//     importers skip them.
//   - Term strings come from the vocabulary (term id -> token). Postings
//     lists are written in ascending byte order of the term string, which is
//     the order of Lucene's terms dictionary (Anserini's exporter writes
//     them so) and the sorted lexicon PISA builds; ties cannot occur, since
//     a vocabulary that maps two used ids to one string is refused.
//   - Only terms with at least one posting get a postings list, so
//     total_postings_lists equals num_postings_lists, and total_docs equals
//     num_docs: the whole collection is exported.
//   - DocRecord.doclength is the sum of the document's tfs (impacts), so that
//     total_terms_in_collection, the sum of all document lengths in the CIFF
//     spec, is also the sum of every tf (= the sum of every cf), and
//     average_doclength is it divided by num_docs. This is what an Anserini
//     impact index exported to CIFF carries (a term is indexed impact times,
//     and Lucene's norm counts the tokens). PISA's jsonl2ciff counts terms
//     instead; retrieval with impact scores uses neither. An empty document
//     (no postings) still gets a DocRecord, with doclength 0.
//
// # External sort
//
// Postings arrive in document order but must leave in term order. Write
// reads the shards once, buffering (term, docid, tf) triples up to
// Options.MemoryBytes; a full buffer is sorted and spilled as a run file to a
// private temp directory, and the DocRecords go to a temp file as the rows
// are read. The runs (at most maxFanIn at a time, merging in several passes
// when there are more) and the last buffer are then merged with a heap
// straight into PostingsList messages. Every count of the Header is known
// after the reading pass, so the output is written once, front to back,
// without seeking. Memory: MemoryBytes for the buffer, a read buffer per
// merged run, the vocabulary's term order, and one encoded postings list
// (a few bytes per posting of the longest list). The temp directory is
// removed on every return path.
package ciff
