package main

import (
	"fmt"
	"strconv"
	"time"
)

// secondsValue is a duration flag that takes Foreman's plain seconds
// ("30", "2.5") as well as Go durations ("500ms", "1m").
type secondsValue time.Duration

func (s *secondsValue) String() string {
	d := time.Duration(*s)
	if d%time.Second == 0 {
		return strconv.Itoa(int(d / time.Second))
	}
	return d.String()
}

func (s *secondsValue) Set(v string) error {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f < 0 {
			return fmt.Errorf("%q is negative; give seconds, like 30", v)
		}
		*s = secondsValue(f * float64(time.Second))
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return fmt.Errorf("%q is not a number of seconds; write it like 30 or 500ms", v)
	}
	*s = secondsValue(d)
	return nil
}

func (s *secondsValue) Type() string { return "seconds" }
