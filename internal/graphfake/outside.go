package graphfake

// DeletePassOutside deletes the user's live pass as an admin in the Entra admin center or
// another app would, and logs its "Admin deleted security info" record naming by. It reports
// false when the user has no live pass. It panics on an unknown user, which is a broken test.
func (s *Server) DeletePassOutside(userID string, by AuditInitiator) (AuditRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.findUserLocked(userID)
	if !ok {
		panic("graphfake: DeletePassOutside for unknown user " + userID)
	}
	p := s.livePassLocked(u.ID)
	if p == nil {
		return AuditRecord{}, false
	}
	p.Deleted = true
	return *s.logAuditLocked(passRecord(u, p, false, by, s.now(), false)), true
}
