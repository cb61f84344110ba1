package recording

// subscriberBuffer is how many exchanges a live follower may fall behind
// before it is dropped.
const subscriberBuffer = 64

type subscriber struct {
	ch chan Exchange
}

// Subscribe follows the session id live: every exchange appended from now on
// is sent, redacted, on the channel. The channel is closed when the session's
// trail is closed, when cancel is called, or when the subscriber falls more
// than a small buffer behind; a slow follower is dropped rather than allowed
// to slow the proxy down, and can catch up with Read. For a session with no
// open writer in this process the channel is closed at once. Received
// exchanges share memory with other followers and must not be modified.
func (s *Store) Subscribe(sessionID string) (<-chan Exchange, func()) {
	sub := &subscriber{ch: make(chan Exchange, subscriberBuffer)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live[sessionID]; !ok {
		close(sub.ch)
		return sub.ch, func() {}
	}
	m := s.subs[sessionID]
	if m == nil {
		m = make(map[*subscriber]struct{})
		s.subs[sessionID] = m
	}
	m[sub] = struct{}{}
	s.followers.Add(1)
	return sub.ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.dropLocked(sessionID, sub)
	}
}

// publish hands ex to the followers of id without ever blocking.
func (s *Store) publish(id string, ex Exchange) {
	if s.followers.Load() == 0 {
		// The common case: nobody follows any session, and the store's lock, which every session's writer
		// would take here, is not taken at all.
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subs[id] {
		select {
		case sub.ch <- ex:
		default:
			s.log.Warn("dropping slow live follower", "session", id)
			s.dropLocked(id, sub)
		}
	}
}

// dropLocked removes one follower; it is a no-op if it is already gone, so
// cancel may be called any number of times.
func (s *Store) dropLocked(id string, sub *subscriber) {
	m := s.subs[id]
	if _, ok := m[sub]; !ok {
		return
	}
	delete(m, sub)
	s.followers.Add(-1)
	close(sub.ch)
	if len(m) == 0 {
		delete(s.subs, id)
	}
}

// endLocked closes every follower of id and forgets its writer.
func (s *Store) endLocked(id string) {
	for sub := range s.subs[id] {
		s.dropLocked(id, sub)
	}
	delete(s.live, id)
}
