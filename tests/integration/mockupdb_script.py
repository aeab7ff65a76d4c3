#!/usr/bin/python3
"""mockupdb_script.py: a mongod that plays a scripted conversation.

Used by tests/integration/replicaset_spec.lua for the replica-set golden
conversations (tests/integration/replicaset_golden.txt): no mongod can run
here, so each server of a case is a MockupDB that

  * answers isMaster / hello with the script's "hello" fields (setName,
    ismaster, secondary, primary, hosts ...) plus the wire-protocol limits
    a driver needs: libmongoc's own handshakes and heartbeats (legacy
    OP_QUERY commands, left out of the conversation) and the isMaster
    commands of the code under test (OP_MSG, part of the conversation);
  * answers ping, endSessions and buildInfo without consulting the script;
  * answers every other command with the next reply of the script, in
    order, whatever the command is (the spec compares what was sent with
    the golden file afterwards); once the script is exhausted, with
    ok: 0 "mock: script exhausted". A reply {"$hangup": true} closes the
    connection instead, as mongod does when a reconfig changes the primary.

Every request is appended to the record file (--record, shared by the
servers of one case: appends of one short line are atomic) as one JSON line
{"label": the server's name in the script, "handshake": bool (libmongoc's
 own traffic: handshakes, ping, endSessions, buildInfo), "db": ...,
 "cmd": the command document without the driver's own fields ($db, lsid,
 $clusterTime, $readPreference, client metadata), "reply": what was sent},
both documents in compact JSON with their key order kept.

The script (--script, JSON): {"label": "primary", "hello": {...},
"replies": [reply document, ...]}.
"""
import argparse
import datetime
import json
import sys
import threading
import time
from collections import OrderedDict

import mockupdb

HANDSHAKE = {"ismaster", "hello"}
AUTOMATIC = {"ping": OrderedDict([("ok", 1)]), "endsessions": OrderedDict([("ok", 1)])}
# Fields a driver adds to every command: not part of the conversation.
DRIVER_FIELDS = {"$db", "lsid", "$clusterTime", "$readPreference", "client", "compression",
                 "saslSupportedMechs", "helloOk", "topologyVersion", "maxAwaitTimeMS"}


def compact(doc):
    return json.dumps(doc, separators=(",", ":"), default=str)


class Player:
    def __init__(self, script, record_path):
        self.label = script.get("label", "server")
        self.hello_fields = script.get("hello") or OrderedDict()
        self.replies = list(script.get("replies") or [])
        self.record_path = record_path
        self.lock = threading.Lock()

    def hello(self, name):
        reply = OrderedDict()
        primary = bool(self.hello_fields.get("ismaster", True))
        if name == "hello":
            reply["isWritablePrimary"] = primary
        else:
            reply["ismaster"] = primary
        for k, v in self.hello_fields.items():
            if k != "ismaster":
                reply[k] = v
        reply.update([
            ("maxBsonObjectSize", 16777216), ("maxMessageSizeBytes", 48000000),
            ("maxWriteBatchSize", 100000),
            ("localTime", datetime.datetime.now(datetime.timezone.utc)),
            ("minWireVersion", 0), ("maxWireVersion", self.hello_fields.get("maxWireVersion", 9)),
            ("readOnly", False), ("ok", 1),
        ])
        return reply

    def record(self, handshake, db, doc, reply):
        cmd = OrderedDict((k, v) for k, v in doc.items() if k not in DRIVER_FIELDS)
        shown = OrderedDict((k, v) for k, v in reply.items() if k != "localTime")
        line = compact(OrderedDict([("label", self.label), ("handshake", handshake), ("db", db),
                                    ("cmd", cmd), ("reply", shown)]))
        with open(self.record_path, "a") as f:
            f.write(line + "\n")

    def handle(self, request):
        doc = request.doc
        name = request.command_name or next(iter(doc), "")
        lname = name.lower()
        db = (request.namespace or "admin").split(".", 1)[0]
        with self.lock:
            # libmongoc's handshakes and heartbeats are legacy OP_QUERY
            # commands; an isMaster the code under test runs is OP_MSG.
            handshake = lname in HANDSHAKE and not isinstance(request, mockupdb.OpMsg)
            if lname in HANDSHAKE:
                reply = self.hello(lname)
            elif lname in AUTOMATIC:
                reply = AUTOMATIC[lname]
            elif lname == "buildinfo":
                reply = OrderedDict([("version", "4.4.6"), ("versionArray", [4, 4, 6, 0]),
                                     ("ok", 1)])
            elif self.replies:
                reply = OrderedDict(self.replies.pop(0))
            else:
                reply = OrderedDict([("ok", 0), ("errmsg", "mock: script exhausted"),
                                     ("code", 1), ("codeName", "InternalError")])
            self.record(handshake or lname in AUTOMATIC or lname == "buildinfo", db, doc, reply)
            if reply.get("$hangup"):
                return request.hangup()
            return request.replies(reply)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--script", required=True)
    parser.add_argument("--record", required=True)
    args = parser.parse_args()
    with open(args.script) as f:
        script = json.load(f, object_pairs_hook=OrderedDict)
    player = Player(script, args.record)
    server = mockupdb.MockupDB(port=args.port, request_timeout=int(1e6))
    server.autoresponds(player.handle)
    port = server.run()
    print("mockupdb_script %s listening on 127.0.0.1:%d" % (player.label, port), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
