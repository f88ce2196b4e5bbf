package wire

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors shared by the core and plugins. They cross the process
// boundary as gRPC status codes, so errors.Is works on both sides.
var (
	ErrStreamBusy  = errors.New("stream already published")
	ErrForbidden   = errors.New("forbidden")
	ErrNotFound    = errors.New("not found")
	ErrTimeout     = errors.New("timed out")
	ErrUnavailable = errors.New("unavailable")
	ErrInvalid     = errors.New("invalid request")
)

var codeOf = []struct {
	err  error
	code codes.Code
}{
	{ErrStreamBusy, codes.AlreadyExists},
	{ErrForbidden, codes.PermissionDenied},
	{ErrNotFound, codes.NotFound},
	{ErrTimeout, codes.DeadlineExceeded},
	{ErrUnavailable, codes.Unavailable},
	{ErrInvalid, codes.InvalidArgument},
}

// ToStatus converts an error to a gRPC status error, keeping its message.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	for _, c := range codeOf {
		if errors.Is(err, c.err) {
			return status.Error(c.code, err.Error())
		}
	}
	return status.Error(codes.Unknown, err.Error())
}

// FromStatus converts a gRPC status error back to an error that matches the
// sentinels with errors.Is and reads as the original message.
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, c := range codeOf {
		if st.Code() == c.code {
			return &remoteError{msg: st.Message(), sentinel: c.err}
		}
	}
	return &remoteError{msg: st.Message()}
}

type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// Errorf is fmt.Errorf that wraps sentinel so errors.Is finds it.
func Errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
