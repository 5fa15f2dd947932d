package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// window is a parsed weekly time window such as "Mon-Fri 09:00-18:00".
type window struct {
	days       [7]bool // indexed by time.Weekday
	start, end int     // minutes after midnight; end may be 24*60
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// parseWindow parses "[DAYS ]HH:MM-HH:MM". DAYS is a comma-separated list
// of three-letter day names or ranges ("Mon-Fri", "Sat,Sun",
// "Mon,Wed-Fri"), case-insensitive, or "*" for every day; without DAYS
// the window applies every day. Times are 00:00 to 24:00, the start
// inclusive and the end exclusive. An end earlier than the start makes an
// overnight window ("Mon-Fri 22:00-06:00" covers Monday 22:00 to Tuesday
// 06:00): the days name the day the window opens.
func parseWindow(s string) (window, error) {
	var w window
	f := strings.Fields(s)
	var days, span string
	switch len(f) {
	case 1:
		days, span = "*", f[0]
	case 2:
		days, span = f[0], f[1]
	default:
		return w, fmt.Errorf("time window %q: want \"[DAYS ]HH:MM-HH:MM\", e.g. \"Mon-Fri 09:00-18:00\"", s)
	}
	if days == "*" {
		w.days = [7]bool{true, true, true, true, true, true, true}
	} else {
		for _, part := range strings.Split(days, ",") {
			lo, hi, isRange := strings.Cut(part, "-")
			a, ok := dayNames[strings.ToLower(lo)]
			if !ok {
				return w, fmt.Errorf("time window %q: unknown day %q (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)", s, lo)
			}
			b := a
			if isRange {
				if b, ok = dayNames[strings.ToLower(hi)]; !ok {
					return w, fmt.Errorf("time window %q: unknown day %q (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)", s, hi)
				}
			}
			for d := a; ; d = (d + 1) % 7 {
				w.days[d] = true
				if d == b {
					break
				}
			}
		}
	}
	from, to, ok := strings.Cut(span, "-")
	if !ok {
		return w, fmt.Errorf("time window %q: want a time range HH:MM-HH:MM", s)
	}
	var err error
	if w.start, err = parseClock(from); err != nil {
		return w, fmt.Errorf("time window %q: %w", s, err)
	}
	if w.end, err = parseClock(to); err != nil {
		return w, fmt.Errorf("time window %q: %w", s, err)
	}
	if w.start == w.end {
		return w, fmt.Errorf("time window %q: start and end are equal", s)
	}
	if w.start == 24*60 {
		return w, fmt.Errorf("time window %q: a window cannot start at 24:00", s)
	}
	return w, nil
}

func parseClock(s string) (int, error) {
	hh, mm, ok := strings.Cut(s, ":")
	if !ok || len(hh) != 2 || len(mm) != 2 {
		return 0, fmt.Errorf("bad time %q (want HH:MM)", s)
	}
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if err1 != nil || err2 != nil || h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("bad time %q (want 00:00 to 24:00)", s)
	}
	return h*60 + m, nil
}

// contains reports whether t, read in loc, falls inside the window.
func (w window) contains(t time.Time, loc *time.Location) bool {
	t = t.In(loc)
	minute := t.Hour()*60 + t.Minute()
	day := t.Weekday()
	if w.start < w.end {
		return w.days[day] && minute >= w.start && minute < w.end
	}
	// Overnight: the evening part belongs to today, the morning part to
	// the window that opened yesterday.
	if minute >= w.start {
		return w.days[day]
	}
	return minute < w.end && w.days[(day+6)%7]
}

// loadZone resolves an IANA zone name. "UTC" and "" are UTC. Binaries that
// run where the system has no zone database should import time/tzdata.
func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	if name == "Local" {
		return nil, fmt.Errorf("time zone %q depends on the machine: name an IANA zone such as \"Europe/Berlin\"", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", name, err)
	}
	return loc, nil
}
