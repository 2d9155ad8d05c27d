package approvals

import "time"

// checkStart refuses a start time that has passed or is too far ahead.
func (s *Service) checkStart(start time.Time) error {
	if start.IsZero() {
		return nil
	}
	now := s.now()
	if !start.After(now) {
		return onField(Errorf(Invalid, "The start time you picked has already passed. Pick a later one, or leave the start date empty for a pass that works as soon as it is approved."), FieldStart)
	}
	if start.After(now.Add(MaxStartAhead)) {
		return onField(Errorf(Invalid, "A pass can start at most %s ahead. Pick an earlier date, or ask again nearer the time.", FormatDuration(MaxStartAhead)), FieldStart)
	}
	return nil
}

// passStart is the start to ask the directory for when r is approved: the requested start, or
// zero (at once) when that time passed while the request waited for approval. Entra ID refuses
// a start in the past, and the pass's lifetime then runs from the approval.
func (s *Service) passStart(r *Request) time.Time {
	if r.StartsAt.After(s.now().Add(time.Minute)) {
		return r.StartsAt
	}
	return time.Time{}
}

// StartsLater reports whether the issued pass does not work yet at now.
func (r *Request) StartsLater(now time.Time) bool { return r.PassStartsAt.After(now) }
