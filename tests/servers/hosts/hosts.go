// Package hosts is shared by the Go fakes (tests/servers/goose,
// tests/servers/maas; imported as "../hosts", like "../httpstatus"): it runs
// their launcher and terminator (shell command lines, juju.testing.instance's
// programs) for real test hosts, counts those not yet done and waits for
// them. The fake's own mutex guards both the count and the fake's records,
// so the callbacks run with it held.
package hosts

import (
	"bufio"
	"bytes"
	"flag"
	"io"
	"io/ioutil"
	"log"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Host is what a launcher and a terminator are told about a test host.
type Host struct {
	ID           string // the cloud's id: INSTANCE_ID
	Name         string // INSTANCE_NAME
	Index        int    // 1, 2, ... per start over the fake's life: INSTANCE_INDEX
	Address      string // the launcher's answer: INSTANCE_ADDRESS (terminator)
	UserDataFile string // USER_DATA_FILE (launcher)
}

// Tracker counts the launchers that did not answer and the terminators
// that did not exit.
type Tracker struct {
	mu      *sync.Mutex
	cond    *sync.Cond
	kind    string // what the fake calls a host in its log ("server", "node")
	running int
}

// NewTracker returns a tracker guarded by mu (the fake's mutex); kind
// names a host in the log.
func NewTracker(mu *sync.Mutex, kind string) *Tracker {
	return &Tracker{mu: mu, cond: sync.NewCond(mu), kind: kind}
}

// Running is how many launchers and terminators are not yet done (mu held).
func (t *Tracker) Running() int { return t.running }

// Start counts one more launcher or terminator running (mu held).
func (t *Tracker) Start() { t.running++ }

// Done counts one done and wakes Settle (mu held).
func (t *Tracker) Done() {
	t.running--
	t.cond.Broadcast()
}

// Command is line run by /bin/sh with env added to the fake's environment,
// its stderr the fake's.
func Command(line string, env []string) *exec.Cmd {
	cmd := exec.Command("/bin/sh", "-c", "exec "+line)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	return cmd
}

// Launch runs the launcher line for h (mu NOT held; the caller counted it
// with Start). When its first stdout line is an IPv4 address, answered
// runs with mu held and the launcher counts as done. Launch returns with mu
// held, after the launcher exited: its output (stdout and stderr, trimmed)
// and its error; a launcher that never answered is still counted, and the
// caller marks it failed and calls Done.
func (t *Tracker) Launch(line string, h Host, answered func(address string)) (string, error) {
	cmd := Command(line, []string{"INSTANCE_ID=" + h.ID, "USER_DATA_FILE=" + h.UserDataFile,
		"INSTANCE_INDEX=" + strconv.Itoa(h.Index), "INSTANCE_NAME=" + h.Name})
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
			t.mu.Lock()
			answered(first)
			t.Done()
			t.mu.Unlock()
		}
		io.Copy(io.MultiWriter(&rest, os.Stderr), br)
		err = cmd.Wait()
	}
	t.mu.Lock()
	return strings.TrimSpace(first + "\n" + rest.String() + errOut.String()), err
}

// Terminate starts the terminator line for h (mu held) and counts it until
// it exits; then exited runs with mu held: the terminator's state
// ("exited" or "failed", logged) and its output (stdout, with stderr too
// when withStderr, trimmed; a failure's error after it in parentheses).
func (t *Tracker) Terminate(line string, h Host, withStderr bool, exited func(state, output string)) {
	t.Start()
	cmd := Command(line, []string{"INSTANCE_ID=" + h.ID, "INSTANCE_ADDRESS=" + h.Address,
		"INSTANCE_INDEX=" + strconv.Itoa(h.Index), "INSTANCE_NAME=" + h.Name})
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, os.Stderr)
	if withStderr {
		cmd.Stderr = io.MultiWriter(&out, os.Stderr)
	}
	go func() {
		err := cmd.Run()
		t.mu.Lock()
		defer t.mu.Unlock()
		output, state := strings.TrimSpace(out.String()), "exited"
		if err != nil {
			state = "failed"
			output += " (" + err.Error() + ")"
			log.Printf("%s %s: terminator failed: %v", t.kind, h.ID, err)
		}
		exited(state, output)
		t.Done()
	}()
}

// Settle waits (mu NOT held) until every launcher answered and every
// terminator exited, at most timeout; false when some did not.
func (t *Tracker) Settle(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	done := make(chan struct{})
	go func() {
		// wake the waiter at the deadline
		select {
		case <-time.After(timeout):
			t.mu.Lock()
			t.cond.Broadcast()
			t.mu.Unlock()
		case <-done:
		}
	}()
	defer close(done)
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.running > 0 && time.Now().Before(deadline) {
		t.cond.Wait()
	}
	return t.running == 0
}

// Flags are the command-line flags of a fake with test hosts.
type Flags struct {
	Launcher   *string // started per instance; its first stdout line is the address
	Terminator *string // run when an instance goes (and for every one left at exit)
	dir        *string
}

// DefineFlags defines -launcher, -terminator and -dir on flag.CommandLine
// (before flag.Parse).
func DefineFlags() Flags {
	return Flags{
		Launcher: flag.String("launcher", "",
			"command line started per instance start (its first stdout line: the address)"),
		Terminator: flag.String("terminator", "",
			"command line run when a launched instance goes (and for every one left at exit)"),
		dir: flag.String("dir", "", "where user-data-<id> files go (default: a new temporary directory)"),
	}
}

// Dir is -dir, or a new temporary directory named prefix* when none was
// given (after flag.Parse; exits the fake when it cannot make one).
func (f Flags) Dir(prefix string) string {
	if *f.dir == "" {
		d, err := ioutil.TempDir("", prefix)
		if err != nil {
			log.Fatal(err)
		}
		*f.dir = d
	}
	return *f.dir
}
