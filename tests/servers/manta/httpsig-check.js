// httpsig-check.js: checks Joyent HTTP Signatures and Manta signed URLs with
// implementations independent of the project's signer: npm http-signature
// 1.4.0 (parsing the Authorization header, building the signing string) and
// sshpk 1.18.0 (the public key and the signature check). Used by the Manta
// fake (server.js) and the command-line verifier (verify.js).
//
// http-signature 1.4.0 knows only sha1/sha256/sha512 hashes, so for
// "ecdsa-sha384" the header is parsed under a sha512 stand-in name (the
// algorithm is not part of the signed string) and sshpk checks the signature
// with SHA-384 itself.
'use strict';

const httpSignature = require('http-signature');
const sshpk = require('sshpk');

// Muskie's list of algorithms accepted in signed URLs (lib/auth.js SIGN_ALG).
const PRESIGN_ALGORITHMS = new Set([
  'RSA-SHA1', 'RSA-SHA256', 'RSA-SHA384', 'RSA-SHA512',
  'DSA-SHA1', 'DSA-SHA256', 'ECDSA-SHA256', 'ECDSA-SHA384', 'ECDSA-SHA512',
]);

function parseKey(text) {
  return sshpk.parseKey(text, 'auto');
}

// Verifies req ({method, url, httpVersion, headers: lower-case names}) against
// the public key (sshpk.Key). opts: keyId (the keyId the request must name),
// clockSkew (seconds; default 300), headers (names that must be signed).
// Returns {ok: true} or {ok: false, code, reason}.
function verifyRequest(req, key, opts) {
  opts = opts || {};
  const authz = req.headers.authorization;
  if (!authz) {
    return { ok: false, code: 'AuthorizationRequired', reason: 'no Authorization header' };
  }
  let alg = null;
  let headers = req.headers;
  const m = /algorithm="([^"]*)"/.exec(authz);
  if (m && m[1].toLowerCase() === 'ecdsa-sha384') {
    alg = 'sha384';
    headers = Object.assign({}, req.headers, {
      authorization: authz.replace(/algorithm="[^"]*"/, 'algorithm="ecdsa-sha512"'),
    });
  }
  let parsed;
  try {
    parsed = httpSignature.parseRequest({
      method: req.method, url: req.url, httpVersion: req.httpVersion || '1.1', headers: headers,
    }, { clockSkew: opts.clockSkew || 300, headers: opts.headers });
  } catch (e) {
    const code = e.name === 'ExpiredRequestError' ? 'RequestExpired' : 'InvalidSignature';
    return { ok: false, code: code, reason: e.name + ': ' + e.message };
  }
  if (opts.keyId !== undefined && parsed.keyId !== opts.keyId) {
    return { ok: false, code: 'KeyDoesNotExist', reason: parsed.keyId + ' does not exist' };
  }
  let good;
  try {
    if (alg) {
      if (key.type !== 'ecdsa') {
        good = false;
      } else {
        const v = key.createVerify(alg);
        v.update(parsed.signingString);
        good = v.verify(parsed.params.signature, 'base64');
      }
    } else {
      good = httpSignature.verifySignature(parsed, key);
    }
  } catch (e) {
    return { ok: false, code: 'InvalidSignature', reason: e.name + ': ' + e.message };
  }
  if (!good) {
    return { ok: false, code: 'InvalidSignature',
      reason: 'The signature we calculated does not match the one you sent' };
  }
  return { ok: true, signingString: parsed.signingString, algorithm: parsed.params.algorithm };
}

function rfc3986(str) {
  return encodeURIComponent(str).replace(/[!'()*]/g,
    (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

// Verifies a Manta signed URL (muskie's preSignedUrl): query algorithm,
// expires, keyId, signature; the signature covers
// "METHOD\nhost\npath\n<sorted params but signature, RFC 3986>". rawPath is
// the path as sent (before decoding). now: unix seconds.
function verifyPresigned(method, host, rawPath, query, key, opts) {
  opts = opts || {};
  const missing = ['algorithm', 'expires', 'keyId', 'signature'].filter((k) => !query[k]);
  if (missing.length) {
    return { ok: false, code: 'InvalidQueryStringAuthentication',
      reason: 'parameters "' + missing.join(', ') + '" are required' };
  }
  const expires = parseInt(query.expires, 10);
  if (!(expires >= 0)) {
    return { ok: false, code: 'InvalidQueryStringAuthentication', reason: 'expires is invalid' };
  }
  if (opts.now > expires) {
    return { ok: false, code: 'InvalidQueryStringAuthentication', reason: 'request expired' };
  }
  if (opts.keyId !== undefined && query.keyId !== opts.keyId) {
    return { ok: false, code: 'KeyDoesNotExist', reason: query.keyId + ' does not exist' };
  }
  const algorithm = String(query.algorithm).toUpperCase();
  if (!PRESIGN_ALGORITHMS.has(algorithm)) {
    return { ok: false, code: 'InvalidQueryStringAuthentication',
      reason: algorithm + ' is not a supported signing algorithm' };
  }
  const [type, hash] = algorithm.toLowerCase().split('-');
  if (type !== key.type) {
    return { ok: false, code: 'InvalidQueryStringAuthentication', reason: 'key type mismatch' };
  }
  const signingString = method + '\n' + host + '\n' + rawPath + '\n' +
    Object.keys(query).sort((a, b) => a.localeCompare(b))
      .filter((k) => k.toLowerCase() !== 'signature')
      .map((k) => rfc3986(k) + '=' + rfc3986(query[k])).join('&');
  let good;
  try {
    const v = key.createVerify(hash);
    v.update(signingString);
    good = v.verify(query.signature, 'base64');
  } catch (e) {
    good = false;
  }
  if (!good) {
    return { ok: false, code: 'InvalidQueryStringAuthentication',
      reason: 'The signature we calculated does not match the one you sent' };
  }
  return { ok: true, signingString: signingString };
}

module.exports = { parseKey, verifyRequest, verifyPresigned };
