package framework

// WithError attaches err (e.g. the scheduler's FitError) to the status:
// AsError returns it, and its text is the message if there is no other.
// It returns s.
func (s *Status) WithError(err error) *Status {
	if s == nil || err == nil {
		return s
	}
	s.err = err
	if len(s.reasons) == 0 {
		s.reasons = []string{err.Error()}
	}
	return s
}
