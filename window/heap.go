package window

// timer is one pending firing of a window: at a time, for the window in
// slot, valid while the slot's generation is gen.
type timer struct {
	at    int64
	slot  int32
	gen   uint32
	purge bool // the end of the window's lateness, not its firing
}

// timers is a min-heap of timers by time. It is written out rather than
// built on container/heap, whose interface boxes every pushed value.
type timers []timer

func (h timers) less(i, j int) bool { return h[i].at < h[j].at }

func (h *timers) push(t timer) {
	*h = append(*h, t)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *timers) pop() timer {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(s) && s.less(l, m) {
			m = l
		}
		if r < len(s) && s.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}
