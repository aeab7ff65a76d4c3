// verify.js: the independent HTTP Signature verifier for the specs. Reads
// one JSON document on stdin:
//   {"public_key": "<ssh-rsa AAAA... or PEM>", "clock_skew": seconds,
//    "requests": [{"method", "url" (path?query), "headers": {name: value}}]}
// and prints a JSON array with one {"ok": bool, "code", "reason"} per request.
// Run: NODE_PATH=$(npm root -g) node verify.js < input.json
'use strict';

const check = require('./httpsig-check');

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const doc = JSON.parse(input);
  const key = check.parseKey(doc.public_key);
  const out = doc.requests.map((r) => {
    const headers = {};
    for (const k of Object.keys(r.headers || {})) headers[k.toLowerCase()] = String(r.headers[k]);
    const res = check.verifyRequest({ method: r.method || 'GET', url: r.url, headers: headers },
      key, { clockSkew: doc.clock_skew, keyId: r.key_id });
    return { ok: res.ok, code: res.code || null, reason: res.reason || null,
      signing_string: res.signingString || null };
  });
  process.stdout.write(JSON.stringify(out) + '\n');
});
