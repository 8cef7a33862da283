// Package statusutil converts between OTLP/HTTP status codes and gRPC statuses.
//
// Written for Switchyard as a stand-in for the upstream internal module of the same path (see go.mod).
// Behaviour follows the OTLP specification (failures and throttling sections) and the HTTP to gRPC
// mapping of https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md, with the
// OTLP exceptions: 400 -> InvalidArgument and 429 -> ResourceExhausted. It matches the mapping in
// go.opentelemetry.io/collector/consumer/consumererror (internal/statusconversion) of the same release.
package statusutil // import "go.opentelemetry.io/collector/internal/statusutil"

import (
	"net/http"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// NewStatusFromMsgAndHTTPCode returns a gRPC status for an HTTP status code and an error message.
func NewStatusFromMsgAndHTTPCode(errMsg string, statusCode int) *status.Status {
	return status.New(codeForHTTPStatus(statusCode), errMsg)
}

func codeForHTTPStatus(statusCode int) codes.Code {
	switch statusCode {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.Unimplemented
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return codes.Unavailable
	default:
		return codes.Unknown
	}
}

// GetRetryInfo returns the RetryInfo detail carried by a status (the server's throttling hint), or nil.
func GetRetryInfo(st *status.Status) *errdetails.RetryInfo {
	for _, detail := range st.Details() {
		if info, ok := detail.(*errdetails.RetryInfo); ok {
			return info
		}
	}
	return nil
}
