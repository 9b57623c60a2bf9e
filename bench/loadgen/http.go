package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"
)

// httpsClient sends HTTPS requests through a forward proxy (CONNECT, one tunnel per connection) over
// HTTP/1.1 keep-alive, at most `conns` connections, trusting the PEM bundle `caFile` (the interception CA).
func httpsClient(proxy, caFile string, conns int) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", caFile)
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots},
		MaxConnsPerHost:     conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     5 * time.Minute,
		ForceAttemptHTTP2:   false,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		DisableCompression:  true,
	}
	if proxy != "" {
		u, err := url.Parse(proxy)
		if err != nil {
			return nil, err
		}
		tr.Proxy = http.ProxyURL(u)
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// httpOp sends one GET with the SDK-like header set and reads the whole body; anything but 200 fails.
func httpOp(client *http.Client, target string) (op, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	headers := http.Header{}
	for _, h := range requestHeaderSet(u.Host, u.RequestURI()) {
		if h[0][0] != ':' && h[0] != "x-forwarded-proto" && h[0] != "x-request-id" {
			headers.Set(h[0], h[1])
		}
	}
	return func() error {
		req := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: headers.Clone()}
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if err != nil {
			return err
		}
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", res.StatusCode)
		}
		return nil
	}, nil
}

// primeConnections opens `conns` keep-alive connections (tunnels) before anything is measured.
func primeConnections(do op, conns int) error {
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 3; k++ {
				if err := do(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
