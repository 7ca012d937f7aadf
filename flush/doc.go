// Package flush holds mmaplog's flush policies: when the pages of a mapped
// segment are pushed from the page cache towards the disk, and what survives
// which failure under each.
//
// Records live in a MAP_SHARED file mapping, so once Write returns a record
// is in the kernel's page cache: it survives the writer process being killed
// (SIGKILL, a panic, the OOM killer) under every policy. What the policies
// change is what survives losing the machine (a power cut, a kernel panic):
//
//	Policy         What a Write pays              Lost at power loss
//	------------   ----------------------------   ----------------------------------------
//	None           nothing                        what the kernel had not written back yet
//	               (kernel writeback)             (vm.dirty_expire_centisecs, 30 s by default)
//	Interval(d)    nothing; a background          up to d plus the writeback time of the
//	               goroutine starts writeback     dirty range (msync MS_ASYNC, then
//	               every d                        sync_file_range to really start it)
//	Bytes(n)       nothing; after every n bytes   up to n bytes plus what arrived during
//	               a background msync(MS_SYNC)    the last msync
//	EveryWrite     msync(MS_SYNC) of the          nothing whose Write returned
//	               record's pages: slow (a disk
//	               flush per record)
//	OnRotate       nothing; a rolled segment is   the active segment, as under None
//	               msync'ed (MS_SYNC) in the
//	               background
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
