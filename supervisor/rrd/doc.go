// Package rrd keeps metric series in round-robin files: one file per
// series (a dyno's memory and CPU, an app's HTTP traffic), of a fixed
// size set when it is made, holding the last hour at 10 s, the last day
// at 1 minute and the last week at 10 minutes. The daemon adds a sample
// every 10 s and the dashboard reads a window of one archive; a week of
// 200 dynos takes 200 times one file's size on disk, whatever happens.
//
// # Folding
//
// Each archive is a ring of slots, one per period of its step. A sample
// at t goes into the slot of t's period in every archive, so that a
// coarse slot folds in every sample of its period directly rather than
// from the finer slots, which are overwritten sooner: Sum adds, Mean
// adds and divides by the count when read, Max keeps the largest, Last
// the latest. A slot found holding an older period is reset before the
// sample goes in; one holding a newer period (the clock went back by
// more than the ring spans) is left as it is and the sample is dropped
// for that archive. After the clock has been set far into the future and
// back, the slots written meanwhile keep their future periods until
// those come round; remove the file to start again.
//
// # Format
//
// All integers are little endian. A file is a 128-byte header, then
// each archive's slots back to back, in the order of Archives.
//
//	offset  size  header
//	     0     8  magic "DYNORRD1"
//	     8     2  format version, 1
//	    10     2  field count, 1 to 64
//	    12     2  archive count, 3
//	    14     2  slot size in bytes, 12 + 4 × field count
//	    16    16  schema name, zero padded
//	    32    32  per archive (room for 4): step in seconds, uint32;
//	              slot count, uint32; zero after the last
//	    64    64  per field: its Fold, one byte; zero after the last
//
//	offset  size  slot
//	     0     8  period start, int64 Unix seconds; 0: never written
//	     8     4  samples folded in (N), uint32
//	    12   4×k  per field: the folded value, float32 (for Mean, the sum)
//
// The slot of a period starting at Unix second p in an archive of step
// s seconds and n slots is slot (p/s) mod n. Open checks every byte of
// the header against the schema and Archives, and the size against
// Size: a file made for other fields or other archives is refused, not
// read with the wrong meaning.
//
// Values are float32: it halves the files and the page cache they take
// against float64, and its 24-bit mantissa (a relative error of 6e-8)
// is far below a pixel of any chart: 8 GiB of memory is kept to 512
// bytes, and counts are exact up to 2^24 per slot.
//
// A file of k fields is 128 + 2808 × (12 + 4k) bytes, 2808 being the
// slots of the three archives (360 + 1440 + 1008):
//
//	 5 fields: 89984 bytes
//	 8 fields: 123680 bytes
//	40 fields: 483104 bytes
//	60 fields: 707744 bytes
//
// A week of 200 dynos of 8 fields is 200 files, 24.7 MB.
//
// # Writing
//
// Add reads and writes one slot per archive with pread(2) and
// pwrite(2), and never syncs: these are metrics, and a sample lost to a
// crash costs a point on a chart. Only a new file is synced, once,
// before it is renamed into place, so that a crash leaves it whole or
// absent, never empty under its name. The file is allocated in full
// when made (fallocate(2), or a sparse file where the file system
// refuses), so that a full disk shows then, not in the middle of a
// week. One process writes a file; within it, a File is safe for one
// writer and any number of readers at once, who see whole samples.
// Another process reading the file may see a slot half written.
package rrd
