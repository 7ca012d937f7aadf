// Package flush holds mmaplog's flush policies: when the pages of a mapped
// segment are pushed from the page cache to stable storage, and what
// survives which failure under each.
//
// Records live in a MAP_SHARED file mapping, so once Write returns a record
// is in the kernel's page cache: it survives the writer process being killed
// (SIGKILL, a panic, the OOM killer) under every policy. What the policies
// change is what survives losing the machine (a power cut, a kernel panic)
// with a disk whose volatile write cache keeps what was not flushed:
//
// Each policy has one name: its constructor, its Mode and the form Parse
// reads (and mmaptail's --flush takes) are the same word.
//
//	Policy            What a Write pays              Lost at power loss
//	---------------   ----------------------------   ----------------------------------------
//	none              nothing                        everything not made durable by Sync: the
//	None()            (kernel writeback)             kernel's writeback (vm.dirty_expire_centisecs,
//	                                                 30 s by default) does not flush the disk
//	interval=D        nothing; a background          what was written in the last D, plus
//	Interval(d)       msync(MS_SYNC) of the written  during the flush in progress
//	                  range every D
//	bytes=N           nothing; after every N bytes   the last N bytes, plus what was written
//	Bytes(n)          a background msync(MS_SYNC)    during the flush in progress
//	write             msync(MS_SYNC) of the          nothing whose Write returned
//	Write()           record's pages: slow (a disk
//	                  flush per record)
//	rotate            nothing; a rolled segment is   the active segment, as under none, and
//	Rotate()          msync'ed (MS_SYNC) in the      the segment rolled just before, until
//	                  background                     its flush ends
//
// Under every policy Sync makes everything whose Write returned before it
// began durable: the active segment's written range with MS_SYNC, the
// rolled segments not synced yet with fdatasync, and the directory. The
// directory is also fsynced, in the background, after segments are
// created, renamed or removed, and Open fsyncs the parents of the
// directories it creates, so that the files themselves survive.
//
// A flush covers the records published when it begins: writers reserve
// space and then write into it, and a record still being written is left
// for the next flush (Region.SetPublished), which starts at it. So what a
// power loss takes is the end of the log, except that under interval and
// bytes a segment rolled during the last flush may lose its last records
// while the next segment keeps its first (the finisher flushes a rolled
// segment when every record in it is written, while the flush loop goes on
// with the next one); readers report such a gap with the records lost.
//
// The interval and bytes flushes wait for the disk (MS_SYNC) in a
// background goroutine: a Write never waits for them, and they leave alone
// the page being filled (flushing it would write-protect it, and the next
// Write into it would take a page fault). Starting the writeback alone
// (MS_ASYNC, sync_file_range) would not do: it sends no flush to the disk,
// whose cache a power loss empties.
//
// The promises above are tested by cutting the power hundreds of times on a
// filesystem that loses everything not fsynced (the powercut module in the
// repository).
package flush
