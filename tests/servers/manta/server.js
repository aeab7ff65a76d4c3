// server.js: a small Manta fake for the storage specs. Every request's HTTP
// Signature is checked (httpsig-check.js: npm http-signature + sshpk) against
// the one test user's public key; signed URLs (algorithm, expires, keyId,
// signature) are checked as muskie does, without an Authorization header.
// Serves /<user>/stor/...: PUT object (streamed to disk), PUT directory
// (Content-Type: application/json; type=directory; the parent must exist),
// GET object, GET directory (one JSON entry per line, ?limit=&marker=, the
// marker entry included as Manta does), HEAD, DELETE (a directory must be
// empty). Errors are Manta's JSON bodies {"code", "message"} with muskie's
// codes and statuses.
//
// node server.js --host H --port P --dir D --user U --key-id /U/keys/FP --public-key FILE
// (or the key id in MANTA_KEY_ID instead of --key-id)
// Logs one line per request (method, path, status; never the query or
// Authorization, which carry signatures).
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');
const querystring = require('querystring');
const check = require('./httpsig-check');

function args() {
  const a = {};
  for (let i = 2; i < process.argv.length; i += 2) a[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
  // the key id may come from the environment: a command line is public (the secrets audit reads them all)
  if (!a['key-id'] && process.env.MANTA_KEY_ID) a['key-id'] = process.env.MANTA_KEY_ID;
  for (const k of ['host', 'port', 'dir', 'user', 'key-id', 'public-key']) {
    if (!a[k]) { console.error('server.js: --' + k + ' is required'); process.exit(2); }
  }
  return a;
}

const opts = args();
const key = check.parseKey(fs.readFileSync(opts['public-key'], 'utf8'));
const DATA = path.join(opts.dir, 'data');
const STOR = '/' + opts.user + '/stor';
fs.mkdirSync(path.join(DATA, 'stor'), { recursive: true });

class MantaError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

function sendError(res, err) {
  const body = JSON.stringify({ code: err.code, message: err.message });
  res.writeHead(err.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

// The request's Manta path -> the file under DATA, or a MantaError.
function localPath(rawPath) {
  let p;
  try { p = decodeURIComponent(rawPath); } catch (e) { throw new MantaError(400, 'InvalidResource', '"' + rawPath + '" is invalid'); }
  p = p.replace(/\/+$/, '');
  if (p !== STOR && !p.startsWith(STOR + '/')) {
    throw new MantaError(403, 'AuthorizationFailed', opts.user + ' is not allowed to access ' + p);
  }
  const rest = p.slice(STOR.length).split('/').slice(1);
  for (const c of rest) {
    if (c === '' || c === '.' || c === '..' || c.includes('\0')) {
      throw new MantaError(400, 'InvalidResource', '"' + p + '" is invalid');
    }
  }
  return { manta: p, file: path.join(DATA, 'stor', ...rest) };
}

function stat(file) {
  try { return fs.statSync(file); } catch (e) { return null; }
}

function authenticate(req, rawPath, query) {
  const presigned = !req.headers.authorization &&
    (query.signature || query.expires || query.keyId || query.algorithm);
  if (presigned) {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      throw new MantaError(403, 'InvalidQueryStringAuthentication', req.method + ' was not a signed method');
    }
    const r = check.verifyPresigned('GET', req.headers.host, rawPath, query, key,
      { now: Math.floor(Date.now() / 1000), keyId: opts['key-id'] });
    if (!r.ok) throw new MantaError(403, r.code, r.reason);
    return;
  }
  const r = check.verifyRequest(req, key, { keyId: opts['key-id'], clockSkew: 300 });
  if (!r.ok) {
    const status = r.code === 'AuthorizationRequired' ? 401 : 403;
    throw new MantaError(status, r.code, r.reason);
  }
}

function entries(dir) {
  return fs.readdirSync(dir).filter((n) => !n.startsWith('.part-')).sort().map((name) => {
    const st = fs.statSync(path.join(dir, name));
    const e = { name: name, type: st.isDirectory() ? 'directory' : 'object', mtime: st.mtime.toISOString() };
    if (!st.isDirectory()) { e.size = st.size; e.etag = String(st.ino); }
    return e;
  });
}

function putObject(req, res, p) {
  const parent = stat(path.dirname(p.file));
  if (!parent) throw new MantaError(404, 'DirectoryDoesNotExist', path.dirname(p.manta) + ' does not exist');
  if (!parent.isDirectory()) throw new MantaError(400, 'ParentNotDirectory', path.dirname(p.manta) + ' is not a directory');
  const st = stat(p.file);
  if (st && st.isDirectory()) {
    throw new MantaError(400, 'OperationNotAllowedOnDirectory', p.manta + ' is a directory: PUT is not allowed');
  }
  const tmp = path.join(path.dirname(p.file), '.part-' + crypto.randomBytes(6).toString('hex'));
  const out = fs.createWriteStream(tmp);
  const md5 = crypto.createHash('md5');
  req.on('data', (d) => md5.update(d));
  req.pipe(out);
  out.on('finish', () => {
    fs.renameSync(tmp, p.file);
    res.writeHead(204, { 'Computed-MD5': md5.digest('base64'), Etag: String(fs.statSync(p.file).ino) });
    res.end();
  });
  req.on('error', () => { fs.rmSync(tmp, { force: true }); });
}

function putDirectory(res, p) {
  if (p.manta === STOR) { res.writeHead(204); res.end(); return; }
  const parent = stat(path.dirname(p.file));
  if (!parent) throw new MantaError(404, 'DirectoryDoesNotExist', path.dirname(p.manta) + ' does not exist');
  if (!parent.isDirectory()) throw new MantaError(400, 'ParentNotDirectory', path.dirname(p.manta) + ' is not a directory');
  const st = stat(p.file);
  if (st && !st.isDirectory()) throw new MantaError(400, 'ParentNotDirectory', p.manta + ' is an object');
  if (!st) fs.mkdirSync(p.file);
  res.writeHead(204);
  res.end();
}

function get(req, res, p, query) {
  const st = stat(p.file);
  if (!st) throw new MantaError(404, 'ResourceNotFound', p.manta + ' was not found');
  if (st.isDirectory()) {
    let list = entries(p.file);
    const total = list.length;
    let limit = 256;
    if (query.limit !== undefined) {
      limit = parseInt(query.limit, 10);
      if (!(limit >= 1 && limit <= 1024)) {
        throw new MantaError(400, 'InvalidArgumentError', 'limit=' + query.limit + ' is invalid: must be between [1, 1024]');
      }
    }
    if (query.marker !== undefined) list = list.filter((e) => e.name >= query.marker);
    list = list.slice(0, limit);
    let body = list.map((e) => JSON.stringify(e) + '\n').join('');
    if (faults.listing) { faults.listing = false; body = '{"name":"trunc'; }
    res.writeHead(200, { 'Content-Type': 'application/x-json-stream; type=directory', 'Result-Set-Size': total,
      'Content-Length': req.method === 'HEAD' ? 0 : Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': st.size, Etag: String(st.ino) });
  if (req.method === 'HEAD') { res.end(); return; }
  fs.createReadStream(p.file).pipe(res);
}

function del(res, p) {
  if (p.manta === STOR) throw new MantaError(403, 'AuthorizationFailed', opts.user + ' is not allowed to delete ' + p.manta);
  const st = stat(p.file);
  if (!st) throw new MantaError(404, 'ResourceNotFound', p.manta + ' was not found');
  if (st.isDirectory()) {
    if (entries(p.file).length) throw new MantaError(400, 'DirectoryNotEmpty', p.manta + ' is not empty');
    fs.rmSync(p.file, { recursive: true });
  } else {
    fs.unlinkSync(p.file);
  }
  res.writeHead(204);
  res.end();
}

// Fault injection for the specs: POST /_fault?status=500&count=N makes the
// next N object PUTs read some of their body, then answer status with
// Manta's InternalError body (a failure in the middle of an upload).
// POST /_fault?mode=listing makes the next directory listing a truncated
// JSON line.
const faults = { status: 0, count: 0, listing: false };

function injectFault(req, res) {
  faults.count--;
  let seen = 0;
  let answered = false;
  req.on('data', (d) => {
    seen += d.length;
    if (!answered && seen >= 65536) { answered = true; sendError(res, new MantaError(faults.status, 'InternalError', 'injected fault')); }
  });
  req.on('end', () => { if (!answered) sendError(res, new MantaError(faults.status, 'InternalError', 'injected fault')); });
}

const server = http.createServer((req, res) => {
  const q = req.url.indexOf('?');
  const rawPath = q < 0 ? req.url : req.url.slice(0, q);
  const query = q < 0 ? {} : querystring.parse(req.url.slice(q + 1));
  // 'close' always fires ('finish' not when the client hangs up first)
  res.on('close', () => console.log(req.method + ' ' + rawPath + ' ' + res.statusCode));
  if (rawPath === '/_fault' && req.method === 'POST' && query.mode === 'listing') {
    faults.listing = true;
    req.resume();
    res.writeHead(204);
    res.end();
    return;
  }
  if (rawPath === '/_fault' && req.method === 'POST') {
    faults.status = parseInt(query.status, 10) || 500;
    faults.count = parseInt(query.count, 10) || 1;
    req.resume();
    res.writeHead(204);
    res.end();
    return;
  }
  try {
    authenticate(req, rawPath, query);
    if (faults.count > 0 && req.method === 'PUT' && !/type=directory/.test(req.headers['content-type'] || '')) {
      injectFault(req, res);
      return;
    }
    const p = localPath(rawPath);
    const ctype = req.headers['content-type'] || '';
    if (req.method === 'PUT' && /^application\/json;\s*type=directory/.test(ctype)) {
      req.resume();
      putDirectory(res, p);
    } else if (req.method === 'PUT') {
      putObject(req, res, p);
    } else if (req.method === 'GET' || req.method === 'HEAD') {
      get(req, res, p, query);
    } else if (req.method === 'DELETE') {
      del(res, p);
    } else {
      throw new MantaError(405, 'BadMethod', req.method + ' is not allowed');
    }
  } catch (err) {
    req.resume();
    if (err instanceof MantaError) { sendError(res, err); return; }
    console.error(err.stack);
    sendError(res, new MantaError(500, 'InternalError', 'an unexpected error occurred'));
  }
});

server.listen(parseInt(opts.port, 10), opts.host, () => {
  console.log('manta fake listening on http://' + opts.host + ':' + opts.port + STOR);
});
