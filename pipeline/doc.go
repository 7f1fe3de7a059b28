// Package pipeline holds generic building blocks of splash's streaming
// encoder: length-bucketed batching under a token budget, and (later) the
// bounded stages that connect readers, workers and writers. It knows nothing
// about SPLADE and imports nothing of the project.
package pipeline
