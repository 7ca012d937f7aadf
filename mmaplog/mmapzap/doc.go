// Package mmapzap writes zap logs into an mmaplog log with each entry's
// level in the record header, so that readers (mmaptail cat -p, the
// shipper's log.level) know it without parsing the JSON.
//
// NewCore takes the place of zapcore.NewCore: the same encoder and level
// enabler, an *mmaplog.Writer instead of a WriteSyncer. zap's encoder
// writes the entry into its pooled buffer and the core appends it as one
// record: no allocation and no lock of its own.
//
// It is a package of its own so that programs using mmaplog without zap do
// not link zap.
package mmapzap
