package mmaplog

// AppendLine is Append for a line as a logger ends it: one trailing newline
// is dropped (unless Options.KeepNewline), as Write does, and the record
// gets level l. It is what logger adapters that know a record's level call
// (the zap core of package mmapzap). p is copied, never retained.
func (w *Writer) AppendLine(l Level, p []byte) (uint64, error) {
	if n := len(p); !w.opts.KeepNewline && n > 0 && p[n-1] == '\n' {
		p = p[:n-1]
	}
	return w.Append(l, p)
}
