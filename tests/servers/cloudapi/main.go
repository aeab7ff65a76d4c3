// cloudapi-fake: an offline Joyent SmartDataCenter CloudAPI for the joyent
// specs (README.md beside this file). gosdc's localservices/cloudapi
// (Debian golang-github-joyent-gosdc-dev) keeps the model: packages, images,
// machines, tags, metadata, the stop-before-delete rule. This wrapper adds
// what a real CloudAPI does and the double does not:
//   - every request's HTTP Signature is CHECKED twice: here (Go's crypto/rsa,
//     crypto/ecdsa or crypto/ed25519 over the Date header, the account's
//     public key) and by sigcheck.js
//     (npm http-signature + sshpk), both must pass, 401 InvalidCredentials
//     otherwise;
//   - JSON as CloudAPI writes it (lower-case keys, primaryIp, ids as
//     strings), metadata.* / tag.* flattened in the POST body, tag.* list
//     filters (gosdc ignores them);
//   - machines as real test hosts (-launcher / -terminator, as
//     tests/servers/goose does for Nova): provisioning until the launcher
//     prints the address, then running; DELETE runs the terminator;
//   - a /_test/ control API: state, leftovers, calls, faults, settle,
//     user-data, config.
//
// cloudapi-fake -addr HOST:PORT -user U -key-id FP -public-key FILE
//
//	-checker sigcheck.js [-dir D] [-launcher LINE] [-terminator LINE]
//	[-address-pool 127.0.0.X-Y] [-build-gets N]
//
// Logs one line per request (method, path template, status; never the
// Authorization header or a body).
package main

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/joyent/gosdc/cloudapi"
	local "github.com/joyent/gosdc/localservices/cloudapi"
)

type machine struct {
	ID               string            `json:"id"`
	Name             string            `json:"name"`
	State            string            `json:"state"`
	Package          string            `json:"package"`
	Image            string            `json:"image"`
	Memory           int               `json:"memory"`
	Disk             int               `json:"disk"`
	Metadata         map[string]string `json:"metadata"`
	Tags             map[string]string `json:"tags"`
	FirewallEnabled  bool              `json:"firewall_enabled"`
	Created          string            `json:"created"`
	Address          string            `json:"address"`
	Index            int               `json:"index"`
	Gets             int               `json:"gets"`
	UserDataFile     string            `json:"user_data_file"`
	UserDataSize     int               `json:"user_data_size"`
	Launcher         string            `json:"launcher"`
	LauncherOutput   string            `json:"launcher_output"`
	Terminator       string            `json:"terminator"`
	TerminatorOutput string            `json:"terminator_output"`
	Deleted          bool              `json:"deleted"`
	Gone             bool              `json:"gone"`
}

type call struct {
	N       int    `json:"n"`
	Time    string `json:"time"`
	Method  string `json:"method"`
	Path    string `json:"path"`
	Status  int    `json:"status"`
	Auth    string `json:"auth"`
	Fault   bool   `json:"fault"`
	Pending bool   `json:"pending"`
}

type fault struct {
	ID      int    `json:"id"`
	Op      string `json:"op"`
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Count   int    `json:"count"`
	Skip    int    `json:"skip"`
	// After: the call is carried out, then answered with the fault (an
	// answer lost after CloudAPI acted).
	After bool `json:"after"`
	// Delay: seconds before the answer; Reset: no answer, the connection
	// is closed (after Delay: a timeout).
	Delay float64 `json:"delay"`
	Reset bool    `json:"reset"`
}

type fake struct {
	mu         sync.Mutex
	cond       *sync.Cond
	sdc        *local.CloudAPI
	user       string
	keyID      string
	pub        interface{} // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey
	checker    *checker
	dir        string
	launcher   string
	terminator string
	useLaunch  bool
	pool       []string
	buildGets  int
	machines   map[string]*machine
	order      []string
	index      int
	running    int
	calls      []*call
	faults     []*fault
	faultSeq   int
}

// ---------------------------------------------------------- signatures --

// checker is sigcheck.js, one JSON line in and one out per request.
type checker struct {
	mu  sync.Mutex
	in  io.WriteCloser
	out *bufio.Reader
}

func startChecker(script, pubFile, keyID string) (*checker, error) {
	// the key id in the environment, not on a command line (the secrets
	// audit reads every command line: the provider treats it as secret)
	cmd := exec.Command("node", script, pubFile)
	cmd.Env = append(os.Environ(), "SIGCHECK_KEY_ID="+keyID)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &checker{in: in, out: bufio.NewReader(out)}, nil
}

type verdict struct {
	OK     bool   `json:"ok"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
	Form   string `json:"form"`
}

func (c *checker) check(r *http.Request) verdict {
	headers := map[string]string{}
	for k, v := range r.Header {
		headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	headers["host"] = r.Host
	line, _ := json.Marshal(map[string]interface{}{"method": r.Method, "url": r.URL.RequestURI(), "headers": headers})
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.in.Write(append(line, '\n')); err != nil {
		return verdict{Code: "InternalError", Reason: "sigcheck.js: " + err.Error()}
	}
	answer, err := c.out.ReadBytes('\n')
	if err != nil {
		return verdict{Code: "InternalError", Reason: "sigcheck.js: " + err.Error()}
	}
	var v verdict
	if err := json.Unmarshal(answer, &v); err != nil {
		return verdict{Code: "InternalError", Reason: "sigcheck.js: " + err.Error()}
	}
	return v
}

// sshString reads one length-prefixed string of an SSH key blob.
func sshStrings(blob []byte) ([][]byte, error) {
	var parts [][]byte
	for len(blob) >= 4 {
		n := binary.BigEndian.Uint32(blob)
		if int(n) > len(blob)-4 {
			return nil, errors.New("truncated key")
		}
		parts = append(parts, blob[4:4+n])
		blob = blob[4+n:]
	}
	return parts, nil
}

// parsePublic reads an OpenSSH public key line: ssh-rsa, ssh-ed25519 or
// ecdsa-sha2-nistp256/384/521. Returns *rsa.PublicKey,
// ed25519.PublicKey or *ecdsa.PublicKey.
func parsePublic(text string) (interface{}, error) {
	f := strings.Fields(text)
	if len(f) < 2 {
		return nil, errors.New("not an OpenSSH public key line")
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return nil, err
	}
	parts, err := sshStrings(blob)
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 || string(parts[0]) != f[0] {
		return nil, errors.New("the key blob's type is not " + f[0])
	}
	switch {
	case f[0] == "ssh-rsa" && len(parts) == 3:
		e := new(big.Int).SetBytes(parts[1])
		return &rsa.PublicKey{N: new(big.Int).SetBytes(parts[2]), E: int(e.Int64())}, nil
	case f[0] == "ssh-ed25519" && len(parts) == 2 && len(parts[1]) == ed25519.PublicKeySize:
		return ed25519.PublicKey(parts[1]), nil
	case strings.HasPrefix(f[0], "ecdsa-sha2-") && len(parts) == 3:
		curves := map[string]elliptic.Curve{"nistp256": elliptic.P256(), "nistp384": elliptic.P384(),
			"nistp521": elliptic.P521()}
		curve := curves[string(parts[1])]
		if curve == nil {
			return nil, errors.New("unknown curve " + string(parts[1]))
		}
		x, y := elliptic.Unmarshal(curve, parts[2])
		if x == nil {
			return nil, errors.New("bad ECDSA point")
		}
		return &ecdsa.PublicKey{Curve: curve, X: x, Y: y}, nil
	}
	return nil, errors.New("unsupported key type " + f[0])
}

// digest hashes s with the hash of an algorithm name's suffix.
func digest(name, s string) (crypto.Hash, []byte, bool) {
	switch name {
	case "sha1":
		d := sha1.Sum([]byte(s))
		return crypto.SHA1, d[:], true
	case "sha256":
		d := sha256.Sum256([]byte(s))
		return crypto.SHA256, d[:], true
	case "sha384":
		d := sha512.Sum384([]byte(s))
		return crypto.SHA384, d[:], true
	case "sha512":
		d := sha512.Sum512([]byte(s))
		return crypto.SHA512, d[:], true
	}
	return 0, nil, false
}

// verify checks sig over signed with pub under algorithm ("rsa-sha256",
// "ecdsa-sha384", "ed25519-sha512", ...): "" when good, else why not.
func verify(pub interface{}, algorithm, signed string, sig []byte) string {
	dash := strings.Index(algorithm, "-")
	if dash < 0 {
		return "unsupported algorithm " + algorithm
	}
	kind, hname := algorithm[:dash], algorithm[dash+1:]
	h, sum, ok := digest(hname, signed)
	if !ok {
		return "unsupported algorithm " + algorithm
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if kind != "rsa" {
			break
		}
		if rsa.VerifyPKCS1v15(k, h, sum, sig) != nil {
			return "the signature does not match"
		}
		return ""
	case *ecdsa.PublicKey:
		if kind != "ecdsa" {
			break
		}
		if !ecdsa.VerifyASN1(k, sum, sig) {
			return "the signature does not match"
		}
		return ""
	case ed25519.PublicKey:
		if kind != "ed25519" {
			break
		}
		if !ed25519.Verify(k, []byte(signed), sig) {
			return "the signature does not match"
		}
		return ""
	}
	return "algorithm " + algorithm + " does not fit the account's key"
}

var sdcAuth = regexp.MustCompile(`^Signature keyId="([^"]*)",algorithm="([^"]*)"(?: ([A-Za-z0-9+/=]+)|,signature="([A-Za-z0-9+/=]+)")$`)

// checkGo verifies the signature here: "" when good, else why not.
func (f *fake) checkGo(r *http.Request) string {
	date := r.Header.Get("Date")
	if date == "" {
		return "no Date header"
	}
	t, err := http.ParseTime(date)
	if err != nil {
		return "bad Date header"
	}
	if d := time.Since(t); d > 300*time.Second || d < -300*time.Second {
		return "the Date is more than 300 s off"
	}
	m := sdcAuth.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return "no Signature Authorization header"
	}
	if m[1] != "/"+f.user+"/keys/"+f.keyID {
		return m[1] + " is not a key of this account"
	}
	signed, sig := date, m[3]
	if m[3] == "" {
		signed, sig = "date: "+date, m[4]
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return "the signature is not base64"
	}
	return verify(f.pub, strings.ToLower(m[2]), signed, raw)
}

// ------------------------------------------------------------ answers --

func sdcError(w http.ResponseWriter, status int, code, msg string) {
	body, _ := json.Marshal(map[string]string{"code": code, "message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

func writeJSON(w http.ResponseWriter, status int, v interface{}) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

func packageJSON(p cloudapi.Package) map[string]interface{} {
	return map[string]interface{}{"name": p.Name, "memory": p.Memory, "disk": p.Disk, "swap": p.Swap,
		"vcpus": p.VCPUs, "default": p.Default, "id": p.Id, "version": p.Version, "group": p.Group,
		"description": p.Description}
}

func imageJSON(i cloudapi.Image) map[string]interface{} {
	return map[string]interface{}{"id": i.Id, "name": i.Name, "os": i.OS, "version": i.Version, "type": i.Type,
		"description": i.Description, "public": true, "state": "active"}
}

// state is what a GET shows of m now (a GET is a tick, never wall time).
func (f *fake) state(m *machine) string {
	switch {
	case m.Deleted:
		return "deleted"
	case m.State == "stopped":
		return "stopped"
	case m.Launcher == "failed":
		return "failed"
	case m.Address != "" && m.Gets >= f.buildGets:
		return "running"
	}
	return "provisioning"
}

func (f *fake) machineJSON(m *machine) map[string]interface{} {
	st := f.state(m)
	ips := []string{}
	primary := interface{}(nil)
	if st == "running" || st == "stopped" {
		ips = []string{m.Address}
		primary = m.Address
	}
	return map[string]interface{}{"id": m.ID, "name": m.Name, "type": "virtualmachine", "brand": "kvm",
		"state": st, "image": m.Image, "dataset": m.Image, "package": m.Package, "memory": m.Memory,
		"disk": m.Disk, "metadata": m.Metadata, "tags": m.Tags, "created": m.Created, "updated": m.Created,
		"ips": ips, "primaryIp": primary, "networks": []string{}, "firewall_enabled": m.FirewallEnabled,
		"compute_node": "fake-cn-1"}
}

// ----------------------------------------------------------- machines --

func (f *fake) command(line string, env []string) *exec.Cmd {
	cmd := exec.Command("/bin/sh", "-c", "exec "+line)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	return cmd
}

// launch runs the launcher for m: its first stdout line is the address.
func (f *fake) launch(m *machine) {
	f.mu.Lock()
	cmd := f.command(f.launcher, []string{"INSTANCE_ID=" + m.ID, "USER_DATA_FILE=" + m.UserDataFile,
		"INSTANCE_INDEX=" + strconv.Itoa(m.Index), "INSTANCE_NAME=" + m.Name})
	f.mu.Unlock()
	var errOut, rest bytes.Buffer
	cmd.Stderr = io.MultiWriter(&errOut, os.Stderr)
	out, err := cmd.StdoutPipe()
	var first string
	if err == nil {
		err = cmd.Start()
	}
	if err == nil {
		br := bufio.NewReader(out)
		first, _ = br.ReadString('\n')
		first = strings.TrimSpace(first)
		if ip := net.ParseIP(first); ip != nil && ip.To4() != nil {
			f.mu.Lock()
			m.Address = first
			m.Launcher = "answered"
			f.running--
			f.cond.Broadcast()
			f.mu.Unlock()
		}
		io.Copy(io.MultiWriter(&rest, os.Stderr), br)
		err = cmd.Wait()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	output := strings.TrimSpace(first + "\n" + rest.String() + errOut.String())
	m.LauncherOutput = output
	if m.Launcher == "running" {
		f.running--
		f.cond.Broadcast()
		m.Launcher = "failed"
		log.Printf("machine %s: launcher failed: %v: %s", m.ID, err, output)
	}
}

// startTerminator runs the terminator for m (mu held).
func (f *fake) startTerminator(m *machine) {
	if m.Terminator != "" && m.Terminator != "none" {
		return
	}
	if f.terminator == "" || m.Launcher == "none" {
		m.Terminator = "none"
		m.Gone = m.Deleted
		return
	}
	m.Terminator = "running"
	f.running++
	cmd := f.command(f.terminator, []string{"INSTANCE_ID=" + m.ID, "INSTANCE_ADDRESS=" + m.Address,
		"INSTANCE_INDEX=" + strconv.Itoa(m.Index), "INSTANCE_NAME=" + m.Name})
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, os.Stderr)
	go func() {
		err := cmd.Run()
		f.mu.Lock()
		defer f.mu.Unlock()
		f.running--
		m.TerminatorOutput = strings.TrimSpace(out.String())
		if err != nil {
			m.Terminator = "failed"
			m.TerminatorOutput += " (" + err.Error() + ")"
		} else {
			m.Terminator = "exited"
		}
		m.Gone = m.Deleted
		f.cond.Broadcast()
	}()
}

var safeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func (f *fake) createMachine(w http.ResponseWriter, r *http.Request) {
	body, err := ioutil.ReadAll(r.Body)
	if err != nil {
		sdcError(w, 400, "InvalidArgument", "cannot read the body")
		return
	}
	var doc map[string]interface{}
	if err := json.Unmarshal(body, &doc); err != nil {
		sdcError(w, 400, "InvalidArgument", "the body is not a JSON object")
		return
	}
	str := func(k string) string { s, _ := doc[k].(string); return s }
	metadata, tags := map[string]string{}, map[string]string{}
	for k, v := range doc {
		s, isString := v.(string)
		switch {
		case strings.HasPrefix(k, "metadata."):
			if !isString {
				sdcError(w, 409, "InvalidArgument", k+" must be a string")
				return
			}
			metadata[k[len("metadata."):]] = s
		case strings.HasPrefix(k, "tag."):
			if !isString {
				sdcError(w, 409, "InvalidArgument", k+" must be a string")
				return
			}
			tags[k[len("tag."):]] = s
		}
	}
	name := str("name")
	if name != "" && !safeName.MatchString(name) {
		sdcError(w, 409, "InvalidArgument", "name: "+name+" is invalid")
		return
	}
	if str("package") == "" || str("image") == "" {
		sdcError(w, 409, "MissingParameter", "package and image are required")
		return
	}
	if _, err := f.sdc.GetPackage(str("package")); err != nil {
		sdcError(w, 409, "InvalidArgument", "package "+str("package")+" does not exist")
		return
	}
	if _, err := f.sdc.GetImage(str("image")); err != nil {
		sdcError(w, 409, "InvalidArgument", "image "+str("image")+" does not exist")
		return
	}
	sm, err := f.sdc.CreateMachine(name, str("package"), str("image"), nil, metadata, tags)
	if err != nil {
		sdcError(w, 409, "InvalidArgument", err.Error())
		return
	}
	fw, _ := doc["firewall_enabled"].(bool)
	f.index++
	if name == "" {
		name = sm.Id[:8]
	}
	m := &machine{ID: sm.Id, Name: name, State: "provisioning", Package: sm.Package, Image: sm.Image,
		Memory: sm.Memory, Disk: sm.Disk, Metadata: metadata, Tags: tags, FirewallEnabled: fw,
		Created: time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), Index: f.index, Launcher: "none"}
	ud := metadata["cloud-init:user-data"]
	m.UserDataSize = len(ud)
	m.UserDataFile = filepath.Join(f.dir, "user-data-"+m.ID)
	if err := ioutil.WriteFile(m.UserDataFile, []byte(ud), 0600); err != nil {
		sdcError(w, 500, "InternalError", "cannot keep the user-data")
		return
	}
	f.machines[m.ID] = m
	f.order = append(f.order, m.ID)
	if f.useLaunch && f.launcher != "" {
		m.Launcher = "running"
		f.running++
		go f.launch(m)
	} else if len(f.pool) > 0 {
		m.Address, f.pool = f.pool[0], f.pool[1:]
	} else {
		m.Launcher = "failed"
	}
	writeJSON(w, 201, f.machineJSON(m))
}

func (f *fake) listMachines(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	out := []interface{}{}
	for _, id := range f.order {
		m := f.machines[id]
		if m.Deleted {
			continue
		}
		ok := true
		for k, vs := range q {
			v := vs[0]
			switch {
			case strings.HasPrefix(k, "tag."):
				ok = ok && m.Tags[k[len("tag."):]] == v
			case k == "name":
				ok = ok && m.Name == v
			case k == "state":
				ok = ok && f.state(m) == v
			}
		}
		if ok {
			out = append(out, f.machineJSON(m))
		}
	}
	w.Header().Set("X-Resource-Count", strconv.Itoa(len(out)))
	w.Header().Set("X-Query-Limit", "1000")
	if r.Method == "HEAD" {
		w.WriteHeader(200)
		return
	}
	writeJSON(w, 200, out)
}

func (f *fake) machineAction(w http.ResponseWriter, r *http.Request, m *machine) {
	r.ParseForm()
	switch r.Form.Get("action") {
	case "stop":
		if err := f.sdc.StopMachine(m.ID); err != nil {
			sdcError(w, 409, "InvalidState", err.Error())
			return
		}
		m.State = "stopped"
	case "start":
		if err := f.sdc.StartMachine(m.ID); err != nil {
			sdcError(w, 409, "InvalidState", err.Error())
			return
		}
		m.State = "provisioning"
	default:
		sdcError(w, 409, "InvalidArgument", "action "+r.Form.Get("action")+" is not supported")
		return
	}
	w.WriteHeader(202)
}

func (f *fake) deleteMachine(w http.ResponseWriter, m *machine) {
	// gosdc's rule (and older CloudAPIs'): a machine must be stopped first
	if err := f.sdc.DeleteMachine(m.ID); err != nil {
		sdcError(w, 409, "InvalidState", err.Error())
		return
	}
	m.Deleted = true
	f.startTerminator(m)
	w.WriteHeader(204)
}

// route answers an authenticated request; returns the path template.
func (f *fake) route(w http.ResponseWriter, r *http.Request, parts []string) string {
	if len(parts) < 2 || parts[0] != f.user {
		sdcError(w, 403, "NotAuthorized", "you are not allowed to access "+r.URL.Path)
		return "/{other}"
	}
	tmpl := "/{user}/" + parts[1]
	switch {
	case parts[1] == "machines" && len(parts) == 2:
		switch r.Method {
		case "GET", "HEAD":
			f.listMachines(w, r)
		case "POST":
			f.createMachine(w, r)
		default:
			sdcError(w, 405, "BadMethod", r.Method+" is not allowed")
		}
	case parts[1] == "machines" && len(parts) == 3:
		tmpl += "/{id}"
		m := f.machines[parts[2]]
		if m == nil {
			sdcError(w, 404, "ResourceNotFound", "machine "+parts[2]+" not found")
			return tmpl
		}
		if m.Deleted {
			// CloudAPI: 410 Gone with the machine, state deleted
			writeJSON(w, 410, f.machineJSON(m))
			return tmpl
		}
		switch r.Method {
		case "GET", "HEAD":
			m.Gets++
			writeJSON(w, 200, f.machineJSON(m))
		case "POST":
			f.machineAction(w, r, m)
		case "DELETE":
			f.deleteMachine(w, m)
		default:
			sdcError(w, 405, "BadMethod", r.Method+" is not allowed")
		}
	case parts[1] == "packages" && len(parts) == 2 && r.Method == "GET":
		pkgs, _ := f.sdc.ListPackages(nil)
		out := []interface{}{}
		for _, p := range pkgs {
			out = append(out, packageJSON(p))
		}
		writeJSON(w, 200, out)
	case parts[1] == "packages" && len(parts) == 3 && r.Method == "GET":
		tmpl += "/{name}"
		p, err := f.sdc.GetPackage(parts[2])
		if err != nil {
			sdcError(w, 404, "ResourceNotFound", "package "+parts[2]+" not found")
			return tmpl
		}
		writeJSON(w, 200, packageJSON(*p))
	case parts[1] == "images" && len(parts) == 2 && r.Method == "GET":
		imgs, _ := f.sdc.ListImages(nil)
		out := []interface{}{}
		for _, i := range imgs {
			out = append(out, imageJSON(i))
		}
		writeJSON(w, 200, out)
	case parts[1] == "images" && len(parts) == 3 && r.Method == "GET":
		tmpl += "/{id}"
		i, err := f.sdc.GetImage(parts[2])
		if err != nil {
			sdcError(w, 404, "ResourceNotFound", "image "+parts[2]+" not found")
			return tmpl
		}
		writeJSON(w, 200, imageJSON(*i))
	default:
		sdcError(w, 404, "ResourceNotFound", r.URL.Path+" does not exist")
	}
	return tmpl
}

// template is the path template of parts (for faults before routing).
func template(parts []string) string {
	if len(parts) < 2 {
		return "/" + strings.Join(parts, "/")
	}
	t := "/{user}/" + parts[1]
	if len(parts) >= 3 {
		if parts[1] == "packages" {
			t += "/{name}"
		} else {
			t += "/{id}"
		}
	}
	return t
}

// takeFault returns the fault for op, if one is due (mu held).
func (f *fake) takeFault(op string) *fault {
	for i, ft := range f.faults {
		if ft.Op != "*" && ft.Op != op {
			continue
		}
		if ft.Skip > 0 {
			ft.Skip--
			continue
		}
		if ft.Count > 0 {
			ft.Count--
		}
		if ft.Count == 0 {
			f.faults = append(f.faults[:i], f.faults[i+1:]...)
		}
		return ft
	}
	return nil
}

// discard is a ResponseWriter that drops the answer (a fault's "after").
type discard struct{ header http.Header }

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(s int) {
	r.status = s
	r.ResponseWriter.WriteHeader(s)
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_test/") {
		f.control(w, r)
		return
	}
	rec := &recorder{ResponseWriter: w, status: 200}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	tmpl := template(parts)
	auth := "checked"
	if why := f.checkGo(r); why != "" {
		auth = "refused: " + why
	} else if v := f.checker.check(r); !v.OK {
		auth = "refused by sigcheck.js: " + v.Reason
	}
	// the call is journaled at once (pending: the SIGINT cases wait for it)
	f.mu.Lock()
	c := &call{N: len(f.calls) + 1, Time: time.Now().UTC().Format(time.RFC3339Nano), Method: r.Method,
		Path: tmpl, Auth: auth, Pending: true}
	f.calls = append(f.calls, c)
	var ft *fault
	if auth == "checked" {
		ft = f.takeFault(r.Method + " " + tmpl)
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		c.Status, c.Path, c.Pending, c.Fault = rec.status, tmpl, false, ft != nil
		f.mu.Unlock()
		log.Printf("%s %s %d", r.Method, tmpl, rec.status)
	}()
	if auth != "checked" {
		sdcError(rec, 401, "InvalidCredentials", "Invalid signature: "+strings.TrimPrefix(auth, "refused: "))
		return
	}
	if ft != nil {
		if ft.Delay > 0 {
			time.Sleep(time.Duration(ft.Delay * float64(time.Second)))
		}
		if ft.Reset {
			// no answer: the connection is closed (a reset)
			rec.status = 0
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					if tc, ok := conn.(*net.TCPConn); ok {
						tc.SetLinger(0)
					}
					conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		if ft.After {
			f.mu.Lock()
			tmpl = f.route(&discard{header: http.Header{}}, r, parts)
			f.mu.Unlock()
		}
		io.Copy(ioutil.Discard, r.Body)
		sdcError(rec, ft.Status, ft.Code, ft.Message)
		return
	}
	f.mu.Lock()
	tmpl = f.route(rec, r, parts)
	f.mu.Unlock()
}

// ------------------------------------------------------------ control --

func (f *fake) settle(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	go func() {
		time.Sleep(timeout)
		f.mu.Lock()
		f.cond.Broadcast()
		f.mu.Unlock()
	}()
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.running > 0 && time.Now().Before(deadline) {
		f.cond.Wait()
	}
	return f.running == 0
}

func (f *fake) control(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/_test/")
	if p == "settle" {
		timeout := 60.0
		if t, err := strconv.ParseFloat(r.URL.Query().Get("timeout"), 64); err == nil {
			timeout = t
		}
		if f.settle(time.Duration(timeout * float64(time.Second))) {
			writeJSON(w, 200, map[string]bool{"settled": true})
		} else {
			writeJSON(w, 504, map[string]bool{"settled": false})
		}
		return
	}
	if p == "sigcheck" && r.Method == "POST" {
		// the independent checker alone, for the specs: {method, url, headers}
		var req struct {
			Method  string            `json:"method"`
			URL     string            `json:"url"`
			Headers map[string]string `json:"headers"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			sdcError(w, 400, "InvalidArgument", "sigcheck: "+err.Error())
			return
		}
		fr, _ := http.NewRequest(req.Method, req.URL, nil)
		for k, v := range req.Headers {
			fr.Header.Set(k, v)
		}
		fr.Host = r.Host
		writeJSON(w, 200, f.checker.check(fr))
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case p == "state" && r.Method == "GET":
		ms := []interface{}{}
		for _, id := range f.order {
			m := f.machines[id]
			doc := map[string]interface{}{}
			raw, _ := json.Marshal(m)
			json.Unmarshal(raw, &doc)
			doc["state"] = f.state(m)
			delete(doc, "metadata")
			keys := []string{}
			for k := range m.Metadata {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			doc["metadata_keys"] = keys
			ms = append(ms, doc)
		}
		writeJSON(w, 200, map[string]interface{}{"machines": ms, "build_gets": f.buildGets})
	case p == "leftovers" && r.Method == "GET":
		left := []string{}
		for _, id := range f.order {
			if !f.machines[id].Deleted {
				left = append(left, id)
			}
		}
		writeJSON(w, 200, map[string]interface{}{"machines": left})
	case p == "calls" && r.Method == "GET":
		calls := f.calls
		if calls == nil {
			calls = []*call{}
		}
		writeJSON(w, 200, map[string]interface{}{"calls": calls})
	case p == "calls" && r.Method == "DELETE":
		f.calls = nil
		writeJSON(w, 200, map[string]bool{"ok": true})
	case p == "faults" && r.Method == "POST":
		body, _ := ioutil.ReadAll(r.Body)
		var list []*fault
		if len(body) > 0 && body[0] == '{' {
			var one fault
			if err := json.Unmarshal(body, &one); err != nil {
				sdcError(w, 400, "InvalidArgument", "fault: "+err.Error())
				return
			}
			list = []*fault{&one}
		} else if err := json.Unmarshal(body, &list); err != nil {
			sdcError(w, 400, "InvalidArgument", "faults: "+err.Error())
			return
		}
		ids := []int{}
		for _, ft := range list {
			f.faultSeq++
			ft.ID = f.faultSeq
			if ft.Op == "" {
				ft.Op = "*"
			}
			if ft.Count == 0 {
				ft.Count = 1
			}
			if ft.Status == 0 {
				ft.Status = 500
			}
			if ft.Code == "" {
				ft.Code = "InternalError"
			}
			if ft.Message == "" {
				ft.Message = "injected fault"
			}
			f.faults = append(f.faults, ft)
			ids = append(ids, ft.ID)
		}
		writeJSON(w, 200, map[string]interface{}{"ids": ids})
	case p == "faults" && r.Method == "GET":
		writeJSON(w, 200, map[string]interface{}{"faults": f.faults})
	case p == "faults" && r.Method == "DELETE":
		f.faults = nil
		writeJSON(w, 200, map[string]bool{"ok": true})
	case p == "config" && r.Method == "POST":
		q := r.URL.Query()
		if v := q.Get("build_gets"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				sdcError(w, 400, "InvalidArgument", "build_gets: "+v)
				return
			}
			f.buildGets = n
		}
		if v := q.Get("launcher"); v != "" {
			f.useLaunch = v == "1"
		}
		if v := q.Get("address_pool"); v != "" {
			pool, err := parsePool(v)
			if err != nil {
				sdcError(w, 400, "InvalidArgument", "address_pool: "+err.Error())
				return
			}
			f.pool = pool
		}
		writeJSON(w, 200, map[string]bool{"ok": true})
	case strings.HasPrefix(p, "user-data/") && r.Method == "GET":
		m := f.machines[strings.TrimPrefix(p, "user-data/")]
		if m == nil {
			sdcError(w, 404, "ResourceNotFound", "no such machine")
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write([]byte(m.Metadata["cloud-init:user-data"]))
	default:
		sdcError(w, 404, "ResourceNotFound", r.URL.Path+" is not a test call")
	}
}

func parsePool(spec string) ([]string, error) {
	var out []string
	if spec == "none" {
		return out, nil
	}
	for _, item := range strings.Split(spec, ",") {
		if i := strings.LastIndex(item, "-"); i > 0 {
			base := item[:i]
			dot := strings.LastIndex(base, ".")
			lo, err1 := strconv.Atoi(base[dot+1:])
			hi, err2 := strconv.Atoi(item[i+1:])
			if dot < 0 || err1 != nil || err2 != nil || lo > hi {
				return nil, fmt.Errorf("bad range %q", item)
			}
			for n := lo; n <= hi; n++ {
				out = append(out, fmt.Sprintf("%s.%d", base[:dot], n))
			}
		} else if net.ParseIP(item) != nil {
			out = append(out, item)
		} else {
			return nil, fmt.Errorf("bad address %q", item)
		}
	}
	return out, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "HOST:PORT to listen on (loopback only)")
	user := flag.String("user", "", "the account (login)")
	keyID := flag.String("key-id", os.Getenv("CLOUDAPI_KEY_ID"),
		"the account's key name (the keyId is /<user>/keys/<key-id>; default $CLOUDAPI_KEY_ID)")
	pubFile := flag.String("public-key", "", "the account's OpenSSH public key file (RSA, ECDSA or ed25519)")
	checkerJS := flag.String("checker", "", "sigcheck.js")
	dir := flag.String("dir", "", "where user-data files go (default: a new temp dir)")
	launcher := flag.String("launcher", "", "command line started per machine")
	terminator := flag.String("terminator", "", "command line run when a machine is deleted")
	pool := flag.String("address-pool", "127.0.0.200-254", "addresses without a launcher")
	buildGets := flag.Int("build-gets", 1, "GETs of a machine with an address before it is running")
	flag.Parse()
	if *user == "" || *keyID == "" || *pubFile == "" || *checkerJS == "" {
		log.Fatal("cloudapi-fake: -user, -key-id, -public-key and -checker are required")
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		log.Fatalf("cloudapi-fake: -addr %s is not a loopback address", *addr)
	}
	text, err := ioutil.ReadFile(*pubFile)
	if err != nil {
		log.Fatal(err)
	}
	pub, err := parsePublic(string(text))
	if err != nil {
		log.Fatalf("cloudapi-fake: %s: %v", *pubFile, err)
	}
	chk, err := startChecker(*checkerJS, *pubFile, "/"+*user+"/keys/"+*keyID)
	if err != nil {
		log.Fatalf("cloudapi-fake: cannot start %s: %v", *checkerJS, err)
	}
	if *dir == "" {
		if *dir, err = ioutil.TempDir("", "cloudapi-fake-"); err != nil {
			log.Fatal(err)
		}
	}
	addrs, err := parsePool(*pool)
	if err != nil {
		log.Fatalf("cloudapi-fake: -address-pool: %v", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	f := &fake{sdc: local.New("http://"+ln.Addr().String(), *user), user: *user, keyID: *keyID, pub: pub,
		checker: chk, dir: *dir, launcher: *launcher, terminator: *terminator, useLaunch: *launcher != "",
		pool: addrs, buildGets: *buildGets, machines: map[string]*machine{}}
	f.cond = sync.NewCond(&f.mu)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		f.mu.Lock()
		for _, id := range f.order {
			f.startTerminator(f.machines[id])
		}
		f.mu.Unlock()
		f.settle(4 * time.Second)
		os.Exit(0)
	}()
	log.Printf("cloudapi fake listening on http://%s/%s", ln.Addr(), *user)
	log.Fatal(http.Serve(ln, f))
}
