package history

// reportDrops logs the records dropped since it last did: the dashboard
// shows the running total, the log says when it happened. The writer calls
// it after each batch.
func (s *Store) reportDrops() {
	d := s.dropped.Load()
	if d <= s.reported {
		return
	}
	s.log.Warn("the request history's queue was full: records dropped (the requests themselves were served)",
		"dropped", d-s.reported, "total", d)
	s.reported = d
}
