// A MAAS 1.0 API for the specs: gomaasapi.NewTestServer("1.0") (Debian
// golang-github-juju-gomaasapi-dev) behind a handler that
//   - serves it under a path prefix (default /MAAS, as a real MAAS region
//     controller: http://host:port/MAAS/api/1.0/...),
//   - CHECKS every request's OAuth 1.0 PLAINTEXT Authorization header
//     against the credentials in $MAAS_TEST_OAUTH ("consumer:token:secret";
//     from the environment, never the command line): consumer key, token,
//     method PLAINTEXT, signature "&"+secret, timestamp and nonce present;
//     401 otherwise,
//   - injects upload failures on request (POST /_fault?status=&count=),
//   - answers the anonymous files/?op=get_by_key&key=K itself (gomaasapi
//     hands out anon_resource_uri values but does not serve them), without
//     OAuth, as MAAS does.
//
// Usage: maas -addr 127.0.0.1:PORT [-prefix /MAAS]; prints its URL, logs one
// line per request (method, path, op, status; never the Authorization).
package main

import (
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"

	"github.com/juju/gomaasapi"

	"../httpstatus"
)

type credentials struct{ consumer, token, secret string }

// checkOAuth returns "" when the header carries the expected PLAINTEXT
// credentials, else why not (for the log and the 401 body).
func checkOAuth(header string, want credentials) string {
	if !strings.HasPrefix(header, "OAuth ") {
		return "no OAuth Authorization header"
	}
	params := map[string]string{}
	for _, pair := range strings.Split(header[len("OAuth "):], ",") {
		pair = strings.TrimSpace(pair)
		eq := strings.Index(pair, "=")
		if eq < 0 {
			return "malformed OAuth parameter"
		}
		k, v := pair[:eq], pair[eq+1:]
		if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
			return "OAuth parameter " + k + " is not quoted"
		}
		u, err := url.QueryUnescape(v[1 : len(v)-1])
		if err != nil {
			return "OAuth parameter " + k + " is badly escaped"
		}
		params[k] = u
	}
	switch {
	case params["oauth_signature_method"] != "PLAINTEXT":
		return "oauth_signature_method is not PLAINTEXT"
	case params["oauth_consumer_key"] != want.consumer:
		return "unknown consumer key"
	case params["oauth_token"] != want.token:
		return "unknown token"
	case params["oauth_signature"] != "&"+want.secret:
		return "bad signature"
	case params["oauth_timestamp"] == "" || params["oauth_nonce"] == "":
		return "missing oauth_timestamp or oauth_nonce"
	case params["oauth_version"] != "" && params["oauth_version"] != "1.0":
		return "oauth_version is not 1.0"
	}
	return ""
}

// getByKey serves a file's content by its anonymous key, or 404.
func getByKey(ts *gomaasapi.TestServer, w http.ResponseWriter, key string) {
	for _, f := range ts.Files() {
		anon, err := f.GetField("anon_resource_uri")
		if err != nil {
			continue
		}
		u, err := url.Parse(anon)
		if err != nil || u.Query().Get("key") != key {
			continue
		}
		b64, err := f.GetField("content")
		if err != nil {
			break
		}
		data, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		w.Write(data)
		return
	}
	http.NotFound(w, nil)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (host:port)")
	prefix := flag.String("prefix", "/MAAS", "path prefix of the API")
	flag.Parse()
	parts := strings.Split(os.Getenv("MAAS_TEST_OAUTH"), ":")
	if len(parts) != 3 {
		fmt.Fprintln(os.Stderr, "maas: MAAS_TEST_OAUTH must be consumer:token:secret")
		os.Exit(2)
	}
	want := credentials{parts[0], parts[1], parts[2]}
	ts := gomaasapi.NewTestServer("1.0")
	inner := ts.Server.Config.Handler
	pfx := strings.TrimRight(*prefix, "/")

	// Fault injection for the specs: POST /_fault?status=500&count=N makes
	// the next N op=add uploads fail with that status once their body is in.
	// POST /_fault?mode=listing makes the next op=list answer truncated JSON.
	faults, faultStatus, badListing := 0, 0, false
	var mu sync.Mutex
	handler := http.HandlerFunc(func(w0 http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w := &httpstatus.Writer{ResponseWriter: w0}
		op := r.URL.Query().Get("op")
		defer func() { log.Printf("%s %s op=%s %d", r.Method, r.URL.Path, op, w.Status) }()
		if r.URL.Path == "/_fault" && r.Method == "POST" && r.URL.Query().Get("mode") == "listing" {
			badListing = true
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if badListing && op == "list" && checkOAuth(r.Header.Get("Authorization"), want) == "" {
			badListing = false
			w.WriteHeader(http.StatusOK)
			fmt.Fprint(w, `[{"filename": "trunc`)
			return
		}
		if r.URL.Path == "/_fault" && r.Method == "POST" {
			fmt.Sscan(r.URL.Query().Get("count"), &faults)
			faultStatus = http.StatusInternalServerError
			fmt.Sscan(r.URL.Query().Get("status"), &faultStatus)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if op == "get_by_key" && r.Method == "GET" && strings.HasSuffix(r.URL.Path, "/files/") {
			getByKey(ts, w, r.URL.Query().Get("key"))
			return
		}
		if why := checkOAuth(r.Header.Get("Authorization"), want); why != "" {
			w.Header().Set("WWW-Authenticate", `OAuth realm="MAAS API"`)
			http.Error(w, "Authorization Required: "+why, http.StatusUnauthorized)
			return
		}
		if !strings.HasPrefix(r.URL.Path, pfx+"/api/") {
			http.NotFound(w, r)
			return
		}
		if faults > 0 && op == "add" {
			// a failure in the middle of an upload: the body is read, then refused
			faults--
			io.Copy(io.Discard, r.Body)
			http.Error(w, "Internal Server Error: injected fault", faultStatus)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = strings.TrimPrefix(r.URL.Path, pfx)
		r2.URL.RawPath = ""
		inner.ServeHTTP(w, r2)
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("http://%s%s/\n", ln.Addr().String(), pfx)
	log.Fatal(http.Serve(ln, handler))
}
