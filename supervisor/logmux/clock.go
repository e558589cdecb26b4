package logmux

import "time"

// A stamp appends line timestamps. Calling time.Format for every line
// would cost more than the rest of the formatting, so the part that
// changes once a second is formatted once a second and cached; Logplex
// lines then only need their six microsecond digits appended.
//
// A stamp is not safe for concurrent use: each source has its own.
type stamp struct {
	format Format
	sec    int64          // Unix second the cache was formatted for
	loc    *time.Location // location the cache was formatted in
	head   []byte         // "15:04:05 " (terminal) or "2006-01-02T15:04:05." (logplex)
	tail   []byte         // logplex only: "-07:00 "
}

// append appends the timestamp column for t, including the space after it.
func (c *stamp) append(b []byte, t time.Time) []byte {
	// A zone's offset only changes on a second boundary, so the second and
	// the location pointer are enough to tell whether the cache is current.
	if sec := t.Unix(); c.head == nil || sec != c.sec || t.Location() != c.loc {
		c.refresh(t)
	}
	b = append(b, c.head...)
	if c.format != FormatLogplex {
		return b
	}
	us := t.Nanosecond() / 1000
	b = append(b,
		byte('0'+us/100000),
		byte('0'+us/10000%10),
		byte('0'+us/1000%10),
		byte('0'+us/100%10),
		byte('0'+us/10%10),
		byte('0'+us%10))
	return append(b, c.tail...)
}

func (c *stamp) refresh(t time.Time) {
	c.sec, c.loc = t.Unix(), t.Location()
	if c.format == FormatLogplex {
		c.head = t.AppendFormat(c.head[:0], "2006-01-02T15:04:05.")
		// "-07:00" rather than "Z07:00": Logplex writes "+00:00" for UTC.
		c.tail = t.AppendFormat(c.tail[:0], "-07:00 ")
		return
	}
	c.head = t.AppendFormat(c.head[:0], "15:04:05 ")
}
