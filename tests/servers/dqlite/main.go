// dqlite: a go-dqlite node for the specs, the independent implementation
// that the C client (core/dqlite.c) is checked against and that other specs
// join into clusters with this project's own node. See README.md.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/canonical/go-dqlite/app"
	"github.com/canonical/go-dqlite/client"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:17666", "address this node listens on and peers dial")
	dir := flag.String("dir", "", "data directory (created 0700 when absent)")
	join := flag.String("join", "", "comma-separated addresses of existing nodes to join (empty: bootstrap)")
	cert := flag.String("cert", "", "PEM certificate (chain) of this node; with -key and -ca: mutual TLS")
	key := flag.String("key", "", "PEM private key of -cert")
	ca := flag.String("ca", "", "PEM CA bundle that peers' and clients' certificates must chain to")
	voters := flag.Int("voters", 3, "voters the cluster aims for (odd, >= 3)")
	rolesEvery := flag.Duration("roles-every", time.Second, "how often the leader adjusts roles (promotes spares to voters)")
	verbose := flag.Bool("v", false, "log go-dqlite's debug messages")
	readyTimeout := flag.Duration("ready-timeout", 60*time.Second, "how long to wait for the join")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	if *dir == "" {
		log.Fatal("-dir is required")
	}
	if err := os.MkdirAll(*dir, 0700); err != nil {
		log.Fatal(err)
	}

	options := []app.Option{app.WithAddress(*addr), app.WithVoters(*voters), app.WithRolesAdjustmentFrequency(*rolesEvery),
		app.WithLogFunc(func(l client.LogLevel, format string, a ...interface{}) {
			if *verbose || l >= client.LogWarn {
				log.Printf("%s: %s", l.String(), fmt.Sprintf(format, a...))
			}
		})}
	if *join != "" {
		options = append(options, app.WithCluster(strings.Split(*join, ",")))
	}
	if *cert != "" || *key != "" || *ca != "" {
		if *cert == "" || *key == "" || *ca == "" {
			log.Fatal("-cert, -key and -ca go together")
		}
		pair, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			log.Fatalf("load key pair: %v", err)
		}
		pem, err := ioutil.ReadFile(*ca)
		if err != nil {
			log.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			log.Fatalf("%s: no certificate", *ca)
		}
		listen, dial := app.SimpleTLSConfig(pair, pool)
		// No session resumption: every node's dial config has one ServerName
		// (the certificate's first DNS name) and one shared session cache, so
		// a ticket from one node was offered to another, which failed the
		// handshake ("invalid PSK binder", "bad record MAC") and kept
		// joining nodes spares.
		listen.SessionTicketsDisabled = true
		dial.ClientSessionCache = nil
		options = append(options, app.WithTLS(listen, dial))
	}

	// With TLS, libdqlite listens on the abstract unix socket
	// "@dqlite-<id>", and every bootstrap node has the same id: two test
	// clusters on one host (specs run in parallel) would collide. go-dqlite
	// puts $SNAP_INSTANCE_NAME into that name; make it unique per process.
	os.Setenv("SNAP_INSTANCE_NAME", fmt.Sprintf("juju-test-%d", os.Getpid()))
	node, err := app.New(*dir, options...)
	if err != nil {
		log.Fatalf("start: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *readyTimeout)
	err = node.Ready(ctx)
	cancel()
	if err != nil {
		log.Fatalf("ready: %v", err)
	}
	// The specs (and scripts) wait for this line.
	fmt.Printf("ready id=%d address=%s\n", node.ID(), node.Address())
	os.Stdout.Sync()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	log.Printf("stopping")
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	node.Handover(ctx)
	cancel()
	node.Close()
}
