// Command null-go is the floor the benchmarks compare authproxy with: an Envoy ext_proc server in Go
// (go-control-plane types, grpc-go) that does no work. It answers each stream's request_headers message
// the way authproxy answers a static rule, with one header mutation (`authorization: Bearer x` in
// raw_value, OVERWRITE_IF_EXISTS_OR_ADD), and ends the stream with OK right after. On a stream whose
// x-authproxy-phase is `connect` (the sidecar's outer listener) it answers as authproxy does for an
// intercepted CONNECT: `x-authproxy-route: intercept`, a route cache clear, and the target host and port
// as dynamic metadata (namespace authproxy), taken from :authority as is. Prints "listening" when ready.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"
)

type server struct {
	extprocv3.UnimplementedExternalProcessorServer
	inject *extprocv3.ProcessingResponse
}

func setHeader(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: key, RawValue: []byte(value)},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

func continueWith(set *corev3.HeaderValueOption, clearRouteCache bool) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{
		RequestHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{
			HeaderMutation:  &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{set}},
			ClearRouteCache: clearRouteCache,
		}},
	}}
}

// routeResponse is the connect-phase answer for the CONNECT target in :authority (host:port).
func routeResponse(headers *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	var authority string
	for _, h := range headers.GetHeaders().GetHeaders() {
		if h.Key == ":authority" {
			authority = string(h.RawValue)
		}
	}
	host, port, err := net.SplitHostPort(authority)
	if err != nil {
		host, port = authority, "443"
	}
	resp := continueWith(setHeader("x-authproxy-route", "intercept"), true)
	resp.DynamicMetadata = &structpb.Struct{Fields: map[string]*structpb.Value{"authproxy": structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
		"target_host": structpb.NewStringValue(host), "target_port": structpb.NewStringValue(port),
	}})}}
	return resp
}

func (s *server) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	connect := len(md.Get("x-authproxy-phase")) > 0 && md.Get("x-authproxy-phase")[0] == "connect"
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		headers := req.GetRequestHeaders()
		if headers == nil {
			// Never asked for (every other phase is SKIP); answered anyway, as authproxy does.
			if err := stream.Send(&extprocv3.ProcessingResponse{}); err != nil {
				return err
			}
			continue
		}
		resp := s.inject
		if connect {
			resp = routeResponse(headers)
		}
		// Returning ends the stream with OK straight after the answer, as authproxy does.
		return stream.Send(resp)
	}
}

func main() {
	listen := flag.String("listen", "", "unix:/path or host:port")
	flag.Parse()
	network, address := "tcp", *listen
	if strings.HasPrefix(address, "unix:") {
		network, address = "unix", strings.TrimPrefix(address, "unix:")
		_ = os.Remove(address)
	}
	lis, err := net.Listen(network, address)
	if err != nil {
		fmt.Fprintln(os.Stderr, "null-go:", err)
		os.Exit(1)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(4 << 20))
	extprocv3.RegisterExternalProcessorServer(srv, &server{inject: continueWith(setHeader("authorization", "Bearer x"), false)})
	fmt.Println("listening", lis.Addr().String())
	if err := srv.Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, "null-go:", err)
		os.Exit(1)
	}
}
