package graph

import "errors"

// Degraded marks a check's failure as one this replica can serve through, such as one shard
// of several being down: /readyz shows it in the body but still answers 200. Taking the
// replica out of service would not help, since its peers see the same dependency, and would
// take away what it can still serve.
func Degraded(err error) error {
	if err == nil {
		return nil
	}
	return &degradedError{err: err}
}

type degradedError struct{ err error }

func (e *degradedError) Error() string { return "degraded: " + e.err.Error() }
func (e *degradedError) Unwrap() error { return e.err }

// IsDegraded reports whether err was marked with Degraded.
func IsDegraded(err error) bool {
	var d *degradedError
	return errors.As(err, &d)
}

// fatal reports whether a check's error makes the replica unready.
func fatal(err error) bool { return err != nil && !IsDegraded(err) }
