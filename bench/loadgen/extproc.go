package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"
)

// requestHeaderSet is what Envoy forwards for an SDK's HTTPS request after TLS interception: the
// pseudo-headers, the client's own headers (an OpenAI/Anthropic-style SDK) and the ones Envoy adds.
func requestHeaderSet(host, path string) [][2]string {
	return [][2]string{
		{":authority", host}, {":path", path}, {":method", "GET"}, {":scheme", "https"},
		{"user-agent", "OpenAI/Python 1.82.0"}, {"accept", "application/json"},
		{"accept-encoding", "gzip, deflate, br, zstd"}, {"content-type", "application/json"},
		{"x-stainless-lang", "python"}, {"x-stainless-package-version", "1.82.0"},
		{"x-stainless-os", "Linux"}, {"x-stainless-arch", "x64"}, {"x-stainless-runtime", "CPython"},
		{"x-stainless-runtime-version", "3.12.8"}, {"x-stainless-retry-count", "0"},
		{"x-forwarded-proto", "https"}, {"x-request-id", "5b0e6c4c-4a55-4d0e-9a3b-0c3f3c2a8f11"},
	}
}

// processingRequest is one request_headers message as Envoy 1.40 sends it (raw_value only, end_of_stream
// set for a GET); with `attrs`, the attributes the inner (inject) filter asks for come along.
func processingRequest(host, path string, attrs bool) *extprocv3.ProcessingRequest {
	hs := requestHeaderSet(host, path)
	headers := make([]*corev3.HeaderValue, len(hs))
	for i, h := range hs {
		headers[i] = &corev3.HeaderValue{Key: h[0], RawValue: []byte(h[1])}
	}
	req := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: headers}, EndOfStream: true},
	}}
	if attrs {
		bare := strings.Split(host, ":")[0]
		req.Attributes = map[string]*structpb.Struct{"envoy.filters.http.ext_proc": {Fields: map[string]*structpb.Value{
			"connection.requested_server_name":            structpb.NewStringValue(bare),
			`filter_state["authproxy.connect_authority"]`: structpb.NewStringValue(bare + ":443"),
		}}}
	}
	return req
}

// dialTarget turns `unix:/path` or `host:port` into a grpc-go target over one HTTP/2 connection.
func dialTarget(target string) (*grpc.ClientConn, error) {
	if !strings.HasPrefix(target, "unix:") {
		target = "passthrough:///" + target
	}
	return grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.WaitForReady(true)))
}

// extProcOp opens one bidi stream per call, as Envoy does per request: sends the request_headers message
// and half-closes (so the stream ends without an RST_STREAM), reads the one response, then the OK status.
func extProcOp(conn *grpc.ClientConn, sandbox, phase, host, path string) op {
	client := extprocv3.NewExternalProcessorClient(conn)
	md := metadata.Pairs("x-sandbox-id", sandbox)
	if phase != "" {
		md.Append("x-authproxy-phase", phase)
	}
	ctx := metadata.NewOutgoingContext(context.Background(), md)
	req := processingRequest(host, path, phase == "inject")
	return func() error {
		stream, err := client.Process(ctx)
		if err != nil {
			return err
		}
		if err := stream.Send(req); err != nil {
			return err
		}
		if err := stream.CloseSend(); err != nil {
			return err
		}
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		if err := checkResponse(resp); err != nil {
			return err
		}
		if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
			return fmt.Errorf("stream end: %v", err)
		}
		return nil
	}
}

// checkResponse insists on a request_headers answer that sets at least one header (the credential, or
// the routing header of the connect phase): anything else means the target is not doing the work.
func checkResponse(resp *extprocv3.ProcessingResponse) error {
	rh := resp.GetRequestHeaders()
	if rh == nil {
		return fmt.Errorf("not a request_headers answer: %v", resp)
	}
	if len(rh.GetResponse().GetHeaderMutation().GetSetHeaders()) == 0 {
		return fmt.Errorf("no header set: %v", resp)
	}
	return nil
}
