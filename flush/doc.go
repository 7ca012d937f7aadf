// Package flush holds mmaplog's flush policies: when the pages of a mapped
// segment are pushed from the page cache towards the disk, and what survives
// which failure under each.
//
// Records live in a MAP_SHARED file mapping, so once Write returns a record
// is in the kernel's page cache: it survives the writer process being killed
// (SIGKILL, a panic, the OOM killer) under every policy. What the policies
// change is what survives losing the machine (a power cut, a kernel panic):
//
// Each policy has one name: its constructor, its Mode and the form Parse
// reads (and mmaptail's --flush takes) are the same word.
//
//	Policy            What a Write pays              Lost at power loss
//	---------------   ----------------------------   ----------------------------------------
//	none              nothing                        what the kernel had not written back yet
//	None()            (kernel writeback)             (vm.dirty_expire_centisecs, 30 s by default)
//	interval=D        nothing; a background          up to D plus the writeback time of the
//	Interval(d)       goroutine starts writeback     dirty range (msync MS_ASYNC, then
//	                  every D                        sync_file_range to really start it)
//	bytes=N           nothing; after every N bytes   up to N bytes plus what arrived during
//	Bytes(n)          a background msync(MS_SYNC)    the last msync
//	write             msync(MS_SYNC) of the          nothing whose Write returned
//	Write()           record's pages: slow (a disk
//	                  flush per record)
//	rotate            nothing; a rolled segment is   the active segment, as under none
//	Rotate()          msync'ed (MS_SYNC) in the
//	                  background
//
// Under every policy the directory is fsynced, in the background, after
// segments are created, renamed or removed, so that the files themselves
// survive a power loss. Sync on the writer always flushes the dirty range
// with MS_SYNC, whatever the policy.
//
// On Linux msync(MS_ASYNC) is a no-op (the kernel already tracks dirty shared
// pages), so asynchronous flushes here also call sync_file_range
// (SYNC_FILE_RANGE_WRITE), which does start the writeback.
package flush
