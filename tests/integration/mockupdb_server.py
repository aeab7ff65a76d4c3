#!/usr/bin/python3
"""mockupdb_server.py: a mongod stand-in for the integration specs.

Started by tests/integration/fake-mongod (which is what lua/juju/mongod.lua
runs in place of mongod). One MockupDB handler answers every request:

  * the handshake (legacy isMaster over OP_QUERY first, then OP_MSG hello),
    reporting an uninitiated replica-set member until replSetInitiate, then
    a primary (or, in no_primary mode, a secondary forever);
  * SCRAM-SHA-1 / SCRAM-SHA-256 authentication against the users created
    with createUser (real proofs are checked, so a wrong password fails);
  * the localhost exception: until the first user exists, every command is
    allowed; afterwards unauthenticated connections get Unauthorized (13);
  * replSetGetStatus / replSetGetConfig / replSetInitiate, createUser /
    updateUser, and an in-memory document store for insert, find (+getMore),
    update ($set, $unset, $inc, $setOnInsert, upserts), delete and count,
    with mongod's error codes (11000 duplicate key, 94 NotYetInitialized,
    23 AlreadyInitialized, 51003 user exists, 59 no such command ...).

Every request is recorded as one JSON line (MOCKUPDB_RECORD or --record):
{"n": seq, "conn": client port, "auth": user or null, "db": ..., "cmd": ...,
 "summary": a stable one-line digest, "doc": the request}. The specs compare
the summaries with tests/integration/mongo_golden.txt.

Failure modes (MOCKUPDB_FAIL): "hang" answers nothing at all, not even the
handshake; "hang_commands" answers the handshake but no command; "auth"
refuses every authentication; "no_primary" never elects a primary.
MOCKUPDB_BATCH sets the cursor batch size (default 101) so getMore is used.

Anything unexpected is answered with ok: 0 and the Python error: the
client never waits for a reply that will not come (except in the hang
modes, on purpose).
"""
import argparse
import base64
import datetime
import hashlib
import hmac
import json
import os
import ssl
import sys
import threading
import time
import traceback
from collections import OrderedDict

import mockupdb
from bson import Binary, ObjectId

HANDSHAKE = {"ismaster", "hello"}
# Commands mongod runs for unauthenticated connections even with --auth.
OPEN_COMMANDS = HANDSHAKE | {"saslstart", "saslcontinue", "ping", "buildinfo", "endsessions",
                             "getnonce"}
MISSING = object()
# mechanism -> (digest, iterations, salt bytes), as mongod makes them.
SCRAM = {
    "SCRAM-SHA-1": ("sha1", 10000, 16),
    "SCRAM-SHA-256": ("sha256", 15000, 28),
}


def server_error(code, code_name, errmsg):
    return OrderedDict([("ok", 0), ("errmsg", errmsg), ("code", code), ("codeName", code_name)])


class Refusal(Exception):
    """A command error reply, raised from deep inside a handler."""

    def __init__(self, code, code_name, errmsg):
        super().__init__(errmsg)
        self.reply = server_error(code, code_name, errmsg)


# ---- value comparison with BSON's notion of equality --------------------------

def bson_equal(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return len(a) == len(b) and all(
            ka == kb and bson_equal(va, vb) for (ka, va), (kb, vb) in zip(a.items(), b.items()))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(bson_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) == type(b) and a == b


def matches(doc, flt):
    for key, want in flt.items():
        if key.startswith("$"):
            raise Refusal(2, "BadValue", "mock: unsupported query operator %s" % key)
        if isinstance(want, dict) and any(k.startswith("$") for k in want):
            raise Refusal(2, "BadValue", "mock: unsupported field operator in %s" % key)
        have = doc.get(key, MISSING)
        if want is None:
            if have is not MISSING and have is not None:
                return False
        elif have is MISSING:
            return False
        elif not bson_equal(have, want):
            if not (isinstance(have, list) and any(bson_equal(x, want) for x in have)):
                return False
    return True


def sort_key(value):
    if value is MISSING or value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (5, value)
    if isinstance(value, (int, float)):
        return (1, value)
    if isinstance(value, str):
        return (2, value.encode("utf-8"))
    return (3, repr(value))


# ---- SCRAM -------------------------------------------------------------------------

def scram_keys(mechanism, user, password):
    digest, iterations, salt_len = SCRAM[mechanism]
    salt = os.urandom(salt_len)
    if mechanism == "SCRAM-SHA-1":
        password = hashlib.md5(("%s:mongo:%s" % (user, password)).encode()).hexdigest()
    salted = hashlib.pbkdf2_hmac(digest, password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", digest).digest()
    return {
        "salt": salt,
        "iterations": iterations,
        "stored_key": hashlib.new(digest, client_key).digest(),
        "server_key": hmac.new(salted, b"Server Key", digest).digest(),
    }


def scram_attrs(text):
    out = {}
    for part in text.split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = v
    return out


# ---- the server state ---------------------------------------------------------------

class MongoState:
    def __init__(self, record_path, fail, batch, version):
        self.lock = threading.RLock()
        self.record_path = record_path
        self.fail = fail
        self.batch = batch
        self.version = version
        self.seq = 0
        self.users = OrderedDict()      # name -> {"roles": [...], "creds": {mech: keys}}
        self.config = None              # the replica set config once initiated
        self.collections = {}           # (db, coll) -> OrderedDict(_id -> doc)
        self.cursors = {}               # id -> (ns, remaining docs)
        self.next_cursor = 1000
        self.auth = {}                  # connection -> user name
        self.conversations = {}         # connection -> SCRAM state

    # -- recording --
    def record(self, conn, db, name, doc, summary):
        if not self.record_path:
            return
        with self.lock:
            self.seq += 1
            line = json.dumps(OrderedDict([
                ("n", self.seq), ("conn", conn), ("auth", self.auth.get(conn)), ("db", db),
                ("cmd", name), ("summary", summary), ("doc", doc),
            ]), default=str)
            with open(self.record_path, "a") as f:
                f.write(line + "\n")

    # -- helpers --
    def coll(self, db, name):
        return self.collections.setdefault((db, name), OrderedDict())

    def member_host(self):
        members = (self.config or {}).get("members") or [{}]
        return members[0].get("host", "127.0.0.1")

    def is_primary(self):
        return self.config is not None and self.fail != "no_primary"

    # -- handshake --
    def hello(self, doc, name):
        primary = self.is_primary()
        reply = OrderedDict()
        reply["helloOk"] = True
        if name == "hello":
            reply["isWritablePrimary"] = primary
        else:
            reply["ismaster"] = primary
        reply["secondary"] = self.config is not None and not primary
        if self.config is not None:
            reply["setName"] = self.config.get("_id")
            reply["setVersion"] = self.config.get("version", 1)
            reply["hosts"] = [self.member_host()]
            reply["me"] = self.member_host()
            if primary:
                reply["primary"] = self.member_host()
        else:
            reply["isreplicaset"] = True
            reply["info"] = "Does not have a valid replica set config"
        reply.update([
            ("maxBsonObjectSize", 16777216), ("maxMessageSizeBytes", 48000000),
            ("maxWriteBatchSize", 100000),
            ("localTime", datetime.datetime.now(datetime.timezone.utc)),
            ("minWireVersion", 0), ("maxWireVersion", 9), ("readOnly", False),
        ])
        mechs_for = doc.get("saslSupportedMechs")
        if isinstance(mechs_for, str) and mechs_for.split(".", 1)[-1] in self.users:
            reply["saslSupportedMechs"] = ["SCRAM-SHA-256", "SCRAM-SHA-1"]
        reply["ok"] = 1
        return reply

    # -- authentication --
    def sasl_start(self, conn, doc):
        mechanism = doc.get("mechanism")
        if mechanism not in SCRAM:
            raise Refusal(2, "BadValue", "Received authentication for mechanism %s which is not "
                          "enabled" % mechanism)
        client_first = bytes(doc.get("payload", b"")).decode("utf-8")
        if not client_first.startswith("n,,"):
            raise Refusal(18, "AuthenticationFailed", "bad SCRAM client-first message")
        bare = client_first[3:]
        attrs = scram_attrs(bare)
        user = attrs.get("n", "").replace("=2C", ",").replace("=3D", "=")
        if self.fail == "auth" or user not in self.users:
            raise Refusal(18, "AuthenticationFailed", "Authentication failed.")
        keys = self.users[user]["creds"][mechanism]
        nonce = attrs.get("r", "") + base64.b64encode(os.urandom(18)).decode()
        server_first = "r=%s,s=%s,i=%d" % (nonce, base64.b64encode(keys["salt"]).decode(),
                                           keys["iterations"])
        skip_empty = bool((doc.get("options") or {}).get("skipEmptyExchange"))
        self.conversations[conn] = {
            "user": user, "mechanism": mechanism, "bare": bare, "server_first": server_first,
            "nonce": nonce, "keys": keys, "skip_empty": skip_empty, "step": 1,
        }
        return OrderedDict([("conversationId", 1), ("done", False),
                            ("payload", Binary(server_first.encode())), ("ok", 1)])

    def sasl_continue(self, conn, doc):
        convo = self.conversations.get(conn)
        if convo is None:
            raise Refusal(17, "ProtocolError", "No SASL session state found")
        if convo["step"] == 2:  # the empty exchange after the server signature
            del self.conversations[conn]
            self.auth[conn] = convo["user"]
            return OrderedDict([("conversationId", 1), ("done", True), ("payload", Binary(b"")),
                                ("ok", 1)])
        final = bytes(doc.get("payload", b"")).decode("utf-8")
        if ",p=" not in final:
            raise Refusal(18, "AuthenticationFailed", "bad SCRAM client-final message")
        without_proof = final[:final.rindex(",p=")]
        attrs = scram_attrs(final)
        digest = SCRAM[convo["mechanism"]][0]
        keys = convo["keys"]
        if attrs.get("r") != convo["nonce"]:
            raise Refusal(18, "AuthenticationFailed", "Authentication failed.")
        auth_message = ",".join([convo["bare"], convo["server_first"], without_proof]).encode()
        client_signature = hmac.new(keys["stored_key"], auth_message, digest).digest()
        proof = base64.b64decode(attrs.get("p", ""))
        client_key = bytes(x ^ y for x, y in zip(proof, client_signature))
        if len(proof) != len(client_signature) or \
                hashlib.new(digest, client_key).digest() != keys["stored_key"]:
            del self.conversations[conn]
            raise Refusal(18, "AuthenticationFailed", "Authentication failed.")
        server_signature = hmac.new(keys["server_key"], auth_message, digest).digest()
        payload = Binary(b"v=" + base64.b64encode(server_signature))
        if convo["skip_empty"]:
            del self.conversations[conn]
            self.auth[conn] = convo["user"]
            done = True
        else:
            convo["step"] = 2
            done = False
        return OrderedDict([("conversationId", 1), ("done", done), ("payload", payload),
                            ("ok", 1)])

    # -- replica set --
    def repl_status(self):
        if self.config is None:
            raise Refusal(94, "NotYetInitialized", "no replset config has been received")
        primary = self.is_primary()
        state, state_str = (1, "PRIMARY") if primary else (2, "SECONDARY")
        member = OrderedDict([("_id", 1), ("name", self.member_host()), ("health", 1),
                              ("state", state), ("stateStr", state_str), ("self", True)])
        return OrderedDict([("set", self.config.get("_id")), ("myState", state),
                            ("members", [member]), ("ok", 1)])

    def repl_initiate(self, doc):
        if self.config is not None:
            raise Refusal(23, "AlreadyInitialized", "already initialized")
        config = doc.get("replSetInitiate")
        if not isinstance(config, dict) or not config.get("_id") or \
                not isinstance(config.get("members"), list) or not config["members"]:
            raise Refusal(93, "InvalidReplicaSetConfig", "mock: bad replica set config %r" % config)
        self.config = config
        return {"ok": 1}

    # -- users --
    def create_user(self, db, doc, update):
        name = doc.get("updateUser" if update else "createUser")
        if db != "admin":
            raise Refusal(2, "BadValue", "mock: users live in admin, not %s" % db)
        exists = name in self.users
        if update and not exists:
            raise Refusal(11, "UserNotFound", "Could not find user \"%s\" for db \"admin\"" % name)
        if not update and exists:
            raise Refusal(51003, "Location51003", "User \"%s@admin\" already exists" % name)
        pwd = doc.get("pwd")
        if not update and not isinstance(pwd, str):
            raise Refusal(2, "BadValue", "mock: createUser needs pwd")
        user = self.users.setdefault(name, {"roles": [], "creds": {}})
        if "roles" in doc:
            user["roles"] = list(doc["roles"])
        if isinstance(pwd, str):
            user["creds"] = {m: scram_keys(m, name, pwd) for m in SCRAM}
        return {"ok": 1}

    # -- documents --
    def insert(self, db, doc):
        coll = self.coll(db, doc["insert"])
        n, errors = 0, []
        for i, d in enumerate(doc.get("documents") or []):
            d = OrderedDict(d)
            if "_id" not in d:
                d["_id"] = ObjectId()
                d.move_to_end("_id", last=False)
            key = repr(d["_id"])
            if key in coll:
                errors.append(OrderedDict([
                    ("index", i), ("code", 11000),
                    ("errmsg", "E11000 duplicate key error collection: %s.%s index: _id_ dup key: "
                               "{ _id: %r }" % (db, doc["insert"], d["_id"]))]))
                if doc.get("ordered", True):
                    break
                continue
            coll[key] = d
            n += 1
        reply = OrderedDict([("n", n)])
        if errors:
            reply["writeErrors"] = errors
        reply["ok"] = 1
        return reply

    def select(self, db, name, flt):
        return [d for d in self.coll(db, name).values() if matches(d, flt or {})]

    def find(self, db, doc):
        name = doc["find"]
        docs = self.select(db, name, doc.get("filter"))
        for key, direction in reversed(list((doc.get("sort") or {}).items())):
            docs.sort(key=lambda d: sort_key(d.get(key, MISSING)), reverse=direction < 0)
        limit = doc.get("limit") or 0
        if limit:
            docs = docs[:abs(limit)]
        return self.cursor_reply("%s.%s" % (db, name), docs, "firstBatch",
                                 single=bool(doc.get("singleBatch")))

    def cursor_reply(self, ns, docs, field, single=False):
        first, rest = docs[:self.batch], docs[self.batch:]
        cursor_id = 0
        if rest and not single:
            self.next_cursor += 1
            cursor_id = self.next_cursor
            self.cursors[cursor_id] = (ns, rest)
        cursor = OrderedDict([(field, first), ("id", cursor_id), ("ns", ns)])
        return OrderedDict([("cursor", cursor), ("ok", 1)])

    def get_more(self, db, doc):
        cursor_id = int(doc["getMore"])
        if cursor_id not in self.cursors:
            raise Refusal(43, "CursorNotFound", "cursor id %d not found" % cursor_id)
        ns, docs = self.cursors.pop(cursor_id)
        return self.cursor_reply(ns, docs, "nextBatch")

    def apply_update(self, target, spec, inserting):
        ops = [k for k in spec if k.startswith("$")]
        if not ops:
            keep_id = target.get("_id", MISSING)
            target.clear()
            if keep_id is not MISSING:
                target["_id"] = keep_id
            for k, v in spec.items():
                if k == "_id" and keep_id is not MISSING and not bson_equal(v, keep_id):
                    raise Refusal(66, "ImmutableField", "the (immutable) field '_id' was altered")
                target[k] = v
            return
        if len(ops) != len(spec):
            raise Refusal(9, "FailedToParse", "mock: cannot mix operators and fields")
        for op in ops:
            fields = spec[op]
            if not isinstance(fields, dict) or not fields:
                raise Refusal(9, "FailedToParse", "'%s' is empty. You must specify a field like so: "
                              "{%s: {<field>: ...}}" % (op, op))
            for k, v in fields.items():
                if "." in k:
                    raise Refusal(2, "BadValue", "mock: dotted update paths are not supported")
                if k == "_id" and op != "$setOnInsert" and "_id" in target and \
                        not bson_equal(target["_id"], v):
                    raise Refusal(66, "ImmutableField",
                                  "Performing an update on the path '_id' would modify the "
                                  "immutable field '_id'")
                if op == "$set" or (op == "$setOnInsert" and inserting):
                    target[k] = v
                elif op == "$unset":
                    target.pop(k, None)
                elif op == "$inc":
                    target[k] = target.get(k, 0) + v
                elif op != "$setOnInsert":
                    raise Refusal(9, "FailedToParse", "Unknown modifier: %s" % op)

    def update(self, db, doc):
        coll = self.coll(db, doc["update"])
        n = modified = 0
        upserted = []
        for i, u in enumerate(doc.get("updates") or []):
            q, spec = u.get("q") or {}, u.get("u") or {}
            found = self.select(db, doc["update"], q)
            if not u.get("multi"):
                found = found[:1]
            for target in found:
                before = json.dumps(target, default=str)
                self.apply_update(target, spec, False)
                n += 1
                if json.dumps(target, default=str) != before:
                    modified += 1
            if not found and u.get("upsert"):
                new = OrderedDict((k, v) for k, v in q.items()
                                  if not k.startswith("$") and not isinstance(v, dict))
                self.apply_update(new, spec, True)
                if "_id" not in new:
                    new["_id"] = ObjectId()
                new.move_to_end("_id", last=False)
                coll[repr(new["_id"])] = new
                upserted.append(OrderedDict([("index", i), ("_id", new["_id"])]))
                n += 1
        reply = OrderedDict([("n", n), ("nModified", modified)])
        if upserted:
            reply["upserted"] = upserted
        reply["ok"] = 1
        return reply

    def delete(self, db, doc):
        coll = self.coll(db, doc["delete"])
        n = 0
        for d in doc.get("deletes") or []:
            found = self.select(db, doc["delete"], d.get("q"))
            if d.get("limit"):
                found = found[:1]
            for target in found:
                del coll[repr(target["_id"])]
                n += 1
        return OrderedDict([("n", n), ("ok", 1)])

    def count(self, db, doc):
        return OrderedDict([("n", len(self.select(db, doc["count"], doc.get("query")))),
                            ("ok", 1)])

    # -- dispatch --
    def summary(self, db, name, doc):
        """A stable one-line digest (no secrets, no random values)."""
        lname = name.lower()
        if lname == "replsetinitiate":
            return "%s %s %s" % (db, name, json.dumps(doc.get(name), separators=(",", ":"),
                                                        default=str))
        if lname in ("createuser", "updateuser"):
            roles = ",".join(r if isinstance(r, str) else "%s@%s" % (r.get("role"), r.get("db"))
                             for r in doc.get("roles") or [])
            return "%s %s %s roles=%s" % (db, name, doc.get(name), roles)
        if lname == "insert":
            ids = " ".join(str(d.get("_id")) for d in doc.get("documents") or [])
            return "%s insert %s %s" % (db, doc.get(name), ids)
        if lname in ("find", "count", "update", "delete"):
            return "%s %s %s" % (db, name, doc.get(name))
        return "%s %s" % (db, name)

    def handle(self, request):
        try:
            return self.dispatch(request)
        except Refusal as r:
            return request.replies(r.reply)
        except Exception as e:  # never leave a client waiting for a reply
            traceback.print_exc()
            return request.replies(server_error(1, "InternalError", "mock failure: %r" % (e,)))

    def dispatch(self, request):
        doc = request.doc
        name = request.command_name or next(iter(doc), "")
        lname = name.lower()
        ns = request.namespace or "admin"
        db = ns.split(".", 1)[0]
        conn = request.client_port
        with self.lock:
            self.record(conn, db, name, doc, self.summary(db, name, doc))
            if self.fail == "hang" or (self.fail == "hang_commands" and lname not in HANDSHAKE):
                return True  # handled: by never answering
            if lname in HANDSHAKE:
                return request.replies(self.hello(doc, lname))
            if self.users and conn not in self.auth and lname not in OPEN_COMMANDS:
                raise Refusal(13, "Unauthorized",
                              "command %s requires authentication" % name)
            handlers = {
                "saslstart": lambda: self.sasl_start(conn, doc),
                "saslcontinue": lambda: self.sasl_continue(conn, doc),
                "ping": lambda: {"ok": 1},
                "endsessions": lambda: {"ok": 1},
                "killcursors": lambda: {"ok": 1},
                "buildinfo": lambda: OrderedDict([
                    ("version", self.version),
                    ("versionArray", [int(x) for x in self.version.split(".")[:3]] + [0]),
                    ("ok", 1)]),
                "replsetgetstatus": self.repl_status,
                "replsetgetconfig": lambda: OrderedDict([
                    ("config", self.repl_status() and self.config), ("ok", 1)]),
                "replsetinitiate": lambda: self.repl_initiate(doc),
                "createuser": lambda: self.create_user(db, doc, False),
                "updateuser": lambda: self.create_user(db, doc, True),
                "insert": lambda: self.insert(db, doc),
                "find": lambda: self.find(db, doc),
                "getmore": lambda: self.get_more(db, doc),
                "update": lambda: self.update(db, doc),
                "delete": lambda: self.delete(db, doc),
                "count": lambda: self.count(db, doc),
            }
            handler = handlers.get(lname)
            if handler is None:
                raise Refusal(59, "CommandNotFound", "no such command: '%s'" % name)
            return request.replies(handler())


class Server(mockupdb.MockupDB):
    """MockupDB listening on 127.0.0.1, optionally behind TLS with our own
    certificate (mockupdb's ssl=True would use its bundled one)."""

    def __init__(self, port, tls_pem):
        super().__init__(port=port, request_timeout=int(1e6))
        self._address = ("127.0.0.1", port)
        self._tls_pem = tls_pem

    def run(self):
        self._listening_sock, self._address = mockupdb.bind_tcp_socket(self._address)
        if self._tls_pem:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self._tls_pem)
            # The handshake happens in each connection's own thread, so a
            # client that fails it cannot stop the accept loop.
            self._listening_sock = ctx.wrap_socket(self._listening_sock, server_side=True,
                                                   do_handshake_on_connect=False)
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept_thread.start()
        return self.port


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-pem", help="certificate + key (PEM) to serve TLS with")
    parser.add_argument("--record", default=os.environ.get("MOCKUPDB_RECORD"))
    args = parser.parse_args()
    state = MongoState(
        record_path=args.record,
        fail=os.environ.get("MOCKUPDB_FAIL", ""),
        batch=int(os.environ.get("MOCKUPDB_BATCH", "101")),
        version=os.environ.get("FAKE_MONGOD_VERSION", "4.4.6"),
    )
    server = Server(args.port, args.tls_pem)
    server.autoresponds(state.handle)
    port = server.run()
    print("mockupdb_server listening on 127.0.0.1:%d%s" % (port, " (TLS)" if args.tls_pem else ""),
          flush=True)
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
