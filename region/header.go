package region

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mmaplog/mmaplog/internal/header"
)

// The region header: the first HeaderSize bytes of every region made by
// Create (docs/COUNTERS.md, "Region header"). All integers little-endian.
const (
	HeaderSize = 64
	// Magic is stored last, with one atomic 64-bit store, when the creator
	// has initialised the region (Publish): a zero magic means "being
	// created" (or never finished).
	Magic   = "MMAPRGN\x00"
	Version = 1

	offMagic      = header.OffMagic
	offVersion    = header.OffVersion
	offLayout     = 12
	offLayoutVer  = 16
	offFlags      = 20
	offSize       = 24
	offCreated    = 32
	offCreatorPID = 40
	offCRC        = 60
)

// regionHeader is the shape the region header shares with other mapped
// files' headers: magic, version, header size and CRC (of bytes 8 to 59).
var regionHeader = header.Format{Magic: [8]byte([]byte(Magic)), Version: Version, Size: HeaderSize, CRCFrom: offVersion, CRCAt: offCRC}

// Layout says what a region holds, so that a program attaching a region
// made for something else gets ErrLayout instead of misreading it.
type Layout struct {
	ID      uint32 // identifies the content format, e.g. the counter map's
	Version uint32 // the content format's version; a different one is ErrVersion
	Name    string // for error messages only ("counter map")
}

// Errors describing a region that cannot be attached. They come wrapped in
// an *Error that says which region and what to do; test with errors.Is.
var (
	ErrBadMagic = errors.New("bad magic number")
	ErrVersion  = errors.New("unsupported version")
	ErrLayout   = errors.New("the region holds another layout")
	ErrSize     = errors.New("size mismatch")
	ErrTooSmall = errors.New("region too small")
	ErrChecksum = errors.New("header checksum mismatch")
	ErrNotReady = errors.New("region is being created, or its creator died before finishing it")
)

// Error locates a problem with a region: which one, at what byte offset,
// the cause (one of the Err sentinels, or an OS error) and what to do.
type Error struct {
	Addr   string // the region's URL
	Offset int64  // byte offset in the region the problem is at; -1: none
	Err    error
	Hint   string // what to do about it
}

func (e *Error) Error() string {
	s := "region " + e.Addr
	if e.Offset >= 0 {
		s += fmt.Sprintf(" at offset %d", e.Offset)
	}
	s += ": " + e.Err.Error()
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// putHeader writes the header of an object of size bytes, all but the magic.
func putHeader(b []byte, l Layout, size int, created int64, pid int) {
	le := binary.LittleEndian
	clear(b[:HeaderSize])
	le.PutUint32(b[offLayout:], l.ID)
	le.PutUint32(b[offLayoutVer:], l.Version)
	le.PutUint32(b[offFlags:], 0)
	le.PutUint64(b[offSize:], uint64(size))
	le.PutUint64(b[offCreated:], uint64(created))
	le.PutUint32(b[offCreatorPID:], uint32(pid))
	regionHeader.Seal(b)
}

// Info is what a region's header says.
type Info struct {
	Layout     Layout
	Size       int   // the object's size in bytes, header included
	Created    int64 // Unix nanoseconds
	CreatorPID int
}

// checkHeader validates the header in b (whose magic was already checked)
// against the object's actual size and the layout wanted.
func checkHeader(addr string, b []byte, actual int, want Layout) (Info, error) {
	le := binary.LittleEndian
	fail := func(off int64, err error, hint string) (Info, error) {
		return Info{}, &Error{Addr: addr, Offset: off, Err: err, Hint: hint}
	}
	if got, want := regionHeader.CRC(b); got != want {
		return fail(offCRC, fmt.Errorf("%w (stored %#08x, computed %#08x)", ErrChecksum, got, want),
			"the header was overwritten by another program: remove the region and let the producer create it again")
	}
	if v := header.VersionOf(b); v != Version {
		return fail(offVersion, fmt.Errorf("%w: region header version %d (this program reads %d)", ErrVersion, v, Version),
			"use a build of mmaplog that matches the producer's")
	}
	if hs := header.SizeOf(b); hs != HeaderSize {
		return fail(header.OffSize, fmt.Errorf("%w: header size %d (want %d)", ErrSize, hs, HeaderSize), "the header is damaged")
	}
	info := Info{
		Layout:     Layout{ID: le.Uint32(b[offLayout:]), Version: le.Uint32(b[offLayoutVer:]), Name: want.Name},
		Size:       int(le.Uint64(b[offSize:])),
		Created:    int64(le.Uint64(b[offCreated:])),
		CreatorPID: int(le.Uint32(b[offCreatorPID:])),
	}
	if info.Layout.ID != want.ID {
		return fail(offLayout, fmt.Errorf("%w: layout %#08x, not the %s's %#08x", ErrLayout, info.Layout.ID, want.Name, want.ID),
			"this region was made for another purpose: check the address")
	}
	if info.Layout.Version != want.Version {
		return fail(offLayoutVer, fmt.Errorf("%w: %s version %d (this program reads %d)", ErrVersion, want.Name, info.Layout.Version, want.Version),
			"use a build of mmaplog that matches the producer's")
	}
	if info.Size != actual {
		if actual < info.Size {
			return fail(offSize, fmt.Errorf("%w: the header says %d bytes but the object has %d (truncated?)", ErrTooSmall, info.Size, actual),
				"the region was truncated by another program: remove it and let the producer create it again")
		}
		return fail(offSize, fmt.Errorf("%w: the header says %d bytes but the object has %d", ErrSize, info.Size, actual),
			"the region was resized by another program: remove it and let the producer create it again")
	}
	return info, nil
}
