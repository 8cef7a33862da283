// Stand-in for go.opentelemetry.io/collector/internal/statusutil v0.164.0, whose source zip the Go
// module proxy available here refuses (403). The Collector 0.164.0 OTLP receiver and exporters import
// it for two small helpers; scripts/stack-binaries.sh points a `replace` at this directory.
module go.opentelemetry.io/collector/internal/statusutil

go 1.26.0

require (
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260706201446-f0a921348800
	google.golang.org/grpc v1.84.0
)

require (
	golang.org/x/sys v0.47.0 // indirect
	google.golang.org/protobuf v1.36.11 // indirect
)
