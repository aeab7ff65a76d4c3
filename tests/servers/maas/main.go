// A MAAS 1.0 API for the specs: gomaasapi.NewTestServer("1.0") (Debian
// golang-github-juju-gomaasapi-dev) behind a handler that
//   - serves it under a path prefix (default /MAAS, as a real MAAS region
//     controller: http://host:port/MAAS/api/1.0/...),
//   - CHECKS every request's OAuth 1.0 PLAINTEXT Authorization header
//     against the credentials in $MAAS_TEST_OAUTH ("consumer:token:secret";
//     from the environment, never the command line): consumer key, token,
//     method PLAINTEXT, signature "&"+secret, timestamp and nonce present;
//     401 otherwise,
//   - drives the node life cycle gomaasapi leaves alone, nodes being real
//     test hosts through -launcher/-terminator (nodes.go),
//   - adds what the provider calls and gomaasapi lacks: maas/?op=get_config,
//     deployment_status with Deploying, list filtered by agent_name,
//     acquire matching MAAS 1.x's constraints (nodes.go's choose) with its
//     409 message (serveAPI below),
//   - answers the anonymous files/?op=get_by_key&key=K itself (gomaasapi
//     hands out anon_resource_uri values but does not serve them), without
//     OAuth, as MAAS does,
//   - has a test control API under /_test/ (control.go) and the older
//     upload faults (POST /_fault?status=&count=, ?mode=listing).
//
// Usage: maas -addr 127.0.0.1:PORT [-prefix /MAAS] [-dir DIR] [-nodes N]
// [-launcher 'PROG ARGS'] [-terminator 'PROG ARGS']; prints its URL, logs
// one line per request (method, path, op, status; never the Authorization
// or a body). README.md has the whole story.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"../hosts"
	"github.com/juju/gomaasapi"
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

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) {
	w.status = s
	w.ResponseWriter.WriteHeader(s)
}

// Hijack lets a reset fault close the connection.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("connection cannot be hijacked")
	}
	w.status = 0
	return hj.Hijack()
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

// maasServer is the whole server: gomaasapi's handler (inner), the OAuth
// check, the node life cycle and the test control. mu serialises requests
// (and guards cloud and control).
type maasServer struct {
	mu      sync.Mutex
	ts      *gomaasapi.TestServer
	inner   http.Handler
	pfx     string
	want    credentials
	cloud   *cloud
	control *control
	// the older upload faults (storage_maas_spec)
	uploadFaults, uploadStatus int
	badListing                 bool
}

// forward runs gomaasapi on r with body, the prefix taken off the path.
func (s *maasServer) forward(r *http.Request, body []byte) *httptest.ResponseRecorder {
	r2 := r.Clone(r.Context())
	r2.URL.Path = strings.TrimPrefix(r.URL.Path, s.pfx)
	r2.URL.RawPath = ""
	r2.Body = ioutil.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	r2.Header.Set("Content-Length", strconv.Itoa(len(body)))
	rec := httptest.NewRecorder()
	s.inner.ServeHTTP(rec, r2)
	return rec
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

// form is a POST's url-encoded form (empty for other bodies).
func form(r *http.Request, body []byte) url.Values {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return url.Values{}
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return url.Values{}
	}
	return v
}

func encodeForm(r *http.Request, v url.Values) []byte {
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return []byte(v.Encode())
}

func (s *maasServer) nodeJSON(w http.ResponseWriter, id string) {
	obj, ok := s.ts.Nodes()[id]
	if !ok {
		http.NotFound(w, nil)
		return
	}
	writeJSON(w, 200, obj)
}

// constraintText is an acquire's constraints as MAAS's 409 message shows them.
func constraintText(v url.Values) string {
	var parts []string
	for k := range v {
		if k != "agent_name" {
			parts = append(parts, k+"="+strings.Join(v[k], ","))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// serveAPI answers an authenticated API call; rel is the path after
// <prefix>/api/1.0/.
func (s *maasServer) serveAPI(w http.ResponseWriter, r *http.Request, rel, op string, body []byte) {
	c := s.cloud
	q := r.URL.Query()
	tmpl := template(rel)
	switch {
	case rel == "maas/" && r.Method == "GET" && op == "get_config":
		// MAAS answers the config item's JSON value (null when unknown).
		values := map[string]interface{}{"maas_name": "maas-test", "default_distro_series": "trusty"}
		writeJSON(w, 200, values[q.Get("name")])
	case rel == "nodes/" && r.Method == "POST" && op == "acquire":
		f := form(r, body)
		s.control.acquires = append(s.control.acquires, f)
		chosen := c.choose(f)
		if chosen == nil {
			http.Error(w, "No available node matches constraints: "+constraintText(f), http.StatusConflict)
			return
		}
		// gomaasapi acquires the node chosen (by hostname) for the agent name
		rec := s.forward(r, encodeForm(r, url.Values{"agent_name": f["agent_name"], "name": {chosen.Hostname}}))
		if rec.Code != 200 {
			copyResponse(w, rec)
			return
		}
		var got struct {
			SystemID string `json:"system_id"`
		}
		json.Unmarshal(rec.Body.Bytes(), &got)
		c.acquired(got.SystemID, f.Get("agent_name"))
		s.nodeJSON(w, got.SystemID)
	case rel == "nodes/" && r.Method == "GET" && op == "list":
		rec := s.forward(r, body)
		agents, filter := q["agent_name"]
		if rec.Code != 200 || !filter {
			copyResponse(w, rec)
			return
		}
		// gomaasapi ignores agent_name; MAAS lists only that agent's nodes.
		var list []map[string]interface{}
		json.Unmarshal(rec.Body.Bytes(), &list)
		out := []map[string]interface{}{}
		for _, n := range list {
			if a, _ := n["agent_name"].(string); a != "" && a == agents[0] {
				out = append(out, n)
			}
		}
		writeJSON(w, 200, out)
	case rel == "nodes/" && r.Method == "GET" && op == "deployment_status":
		writeJSON(w, 200, c.deploymentStatus(q["nodes"]))
	case rel == "nodes/" && r.Method == "POST" && op == "release":
		f := form(r, body)
		ids := append(append([]string{}, f["nodes"]...), q["nodes"]...)
		f["nodes"] = ids
		was := map[string]bool{}
		for _, id := range ids {
			was[id] = c.owned(id)
		}
		rec := s.forward(r, encodeForm(r, f))
		if rec.Code == 200 {
			for _, id := range ids {
				if was[id] {
					c.release(id)
				}
			}
		}
		copyResponse(w, rec)
	case tmpl == "nodes/{id}/" && r.Method == "POST" && op == "start":
		id := strings.TrimSuffix(strings.TrimPrefix(rel, "nodes/"), "/")
		f := form(r, body)
		if code, msg := c.start(id, f.Get("user_data"), f.Get("distro_series")); code != 0 {
			http.Error(w, msg, code)
			return
		}
		rec := s.forward(r, encodeForm(r, f)) // gomaasapi records the operation
		if rec.Code != 200 {
			copyResponse(w, rec)
			return
		}
		s.nodeJSON(w, id)
	case tmpl == "nodes/{id}/" && r.Method == "POST" && op == "release":
		id := strings.TrimSuffix(strings.TrimPrefix(rel, "nodes/"), "/")
		was := c.owned(id)
		rec := s.forward(r, body)
		if rec.Code == 200 && was {
			c.release(id)
		}
		if rec.Code != 200 {
			copyResponse(w, rec)
			return
		}
		s.nodeJSON(w, id)
	default:
		copyResponse(w, s.forward(r, body))
	}
}

func (s *maasServer) ServeHTTP(w0 http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_test/settle" {
		// waits without the lock: the launchers and terminators need it
		timeout := 60.0
		if v := r.URL.Query().Get("timeout"); v != "" {
			fmt.Sscan(v, &timeout)
		}
		ok := s.cloud.settle(time.Duration(timeout * float64(time.Second)))
		writeJSON(w0, map[bool]int{true: 200, false: 504}[ok], map[string]bool{"settled": ok})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := &statusWriter{w0, 200}
	op := r.URL.Query().Get("op")
	defer func() { log.Printf("%s %s op=%s %d", r.Method, r.URL.Path, op, w.status) }()
	if strings.HasPrefix(r.URL.Path, "/_test/") {
		s.serveTest(w, r)
		return
	}
	if r.URL.Path == "/_fault" && r.Method == "POST" && r.URL.Query().Get("mode") == "listing" {
		// the next op=list answers truncated JSON
		s.badListing = true
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.URL.Path == "/_fault" && r.Method == "POST" {
		// the next count op=add uploads fail with status once their body is in
		fmt.Sscan(r.URL.Query().Get("count"), &s.uploadFaults)
		s.uploadStatus = http.StatusInternalServerError
		fmt.Sscan(r.URL.Query().Get("status"), &s.uploadStatus)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	authorized := checkOAuth(r.Header.Get("Authorization"), s.want)
	if s.badListing && op == "list" && authorized == "" {
		s.badListing = false
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, `[{"filename": "trunc`)
		return
	}
	if op == "get_by_key" && r.Method == "GET" && strings.HasSuffix(r.URL.Path, "/files/") {
		getByKey(s.ts, w, r.URL.Query().Get("key"))
		return
	}
	api := s.pfx + "/api/1.0/"
	rel := strings.TrimPrefix(r.URL.Path, api)
	// journaled on arrival, pending (status null) until answered: the
	// SIGINT cases of the fault matrix wait for a held call
	entry := &call{N: len(s.control.calls) + 1, Method: r.Method, Path: template(rel), Op: op, Pending: true}
	if strings.HasPrefix(r.URL.Path, api) {
		s.control.calls = append(s.control.calls, entry)
	}
	defer func() {
		st := w.status
		entry.Status, entry.Pending = &st, false
	}()
	if authorized != "" {
		w.Header().Set("WWW-Authenticate", `OAuth realm="MAAS API"`)
		http.Error(w, "Authorization Required: "+authorized, http.StatusUnauthorized)
		return
	}
	if !strings.HasPrefix(r.URL.Path, api) {
		http.NotFound(w, r)
		return
	}
	body, _ := ioutil.ReadAll(r.Body)
	if f := s.control.match(opName(r.Method, entry.Path, op)); f != nil {
		entry.Fault = true
		if f.Delay > 0 && f.Reset {
			// held without the lock (/_test/ answers meanwhile): nothing is
			// done after it. A delay alone carries the call out afterwards,
			// still under the lock, so later calls see it done.
			s.mu.Unlock()
			time.Sleep(time.Duration(f.Delay * float64(time.Second)))
			s.mu.Lock()
		} else if f.Delay > 0 {
			time.Sleep(time.Duration(f.Delay * float64(time.Second)))
		}
		if apply(f, w) {
			if f.Reset {
				w.status = 0 // no answer
			}
			return
		}
	}
	if s.uploadFaults > 0 && op == "add" {
		// a failure in the middle of an upload: the body is read, then refused
		s.uploadFaults--
		http.Error(w, "Internal Server Error: injected fault", s.uploadStatus)
		return
	}
	s.serveAPI(w, r, rel, op, body)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (host:port)")
	prefix := flag.String("prefix", "/MAAS", "path prefix of the API")
	hostFlags := hosts.DefineFlags()
	nodes := flag.Int("nodes", 0, "Ready nodes to add at start (amd64/generic, 2 cpus, 4096 MB, zone default)")
	flag.Parse()
	parts := strings.Split(os.Getenv("MAAS_TEST_OAUTH"), ":")
	if len(parts) != 3 {
		fmt.Fprintln(os.Stderr, "maas: MAAS_TEST_OAUTH must be consumer:token:secret")
		os.Exit(2)
	}
	ts := gomaasapi.NewTestServer("1.0")
	ts.AddZone("default", "the default zone")
	s := &maasServer{ts: ts, inner: ts.Server.Config.Handler, pfx: strings.TrimRight(*prefix, "/"),
		want: credentials{parts[0], parts[1], parts[2]}, control: &control{calls: []*call{}, faults: []*fault{}, acquires: []url.Values{}}}
	s.cloud = newCloud(&s.mu, ts, s.pfx, hostFlags.Dir("maas-test-"), *hostFlags.Launcher, *hostFlags.Terminator)
	s.mu.Lock()
	s.cloud.addNodes(*nodes, "amd64/generic", 2, 4096, "default", nil)
	s.mu.Unlock()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		s.cloud.terminateAll(4 * time.Second)
		os.Exit(0)
	}()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("http://%s%s/\n", ln.Addr().String(), s.pfx)
	log.Fatal(http.Serve(ln, s))
}
