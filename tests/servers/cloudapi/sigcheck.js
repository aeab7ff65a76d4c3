// sigcheck.js: the CloudAPI fake's independent HTTP Signature checker
// (npm http-signature 1.4.0 + sshpk 1.18.0, nothing of the project's
// signer). main.go starts it once and writes one JSON request per line
// ({method, url, headers (lower-case names)}); it answers one JSON line
// each: {ok, code, reason, form}.
//
// Two Authorization forms, as SmartDataCenter's CloudAPI takes them:
//   Signature keyId="/u/keys/fp",algorithm="rsa-sha256",signature="<b64>"
//     (draft-cavage, parsed and checked by http-signature's parseRequest and
//     verifySignature; default signed headers: date)
//   Signature keyId="/u/keys/fp",algorithm="rsa-sha256" <b64>
//     (gosign's SdcSignature, Juju 1.x's form: the signature of the bare Date
//     value; the parameters are parsed here, the signature is checked by
//     http-signature's verifySignature over that string)
//
// node sigcheck.js PUBLIC_KEY_FILE KEY_ID
'use strict';

const fs = require('fs');
const readline = require('readline');
const httpSignature = require('http-signature');
const sshpk = require('sshpk');

const key = sshpk.parseKey(fs.readFileSync(process.argv[2], 'utf8'), 'auto');
const keyId = process.argv[3];

function check(req) {
  const authz = req.headers.authorization;
  if (!authz) return { ok: false, code: 'MissingParameter', reason: 'no Authorization header' };
  if (!req.headers.date) return { ok: false, code: 'MissingParameter', reason: 'no Date header' };
  const sdc = /^Signature keyId="([^"]*)",algorithm="([^"]*)" ([A-Za-z0-9+/=]+)$/.exec(authz);
  let parsed;
  let form;
  if (sdc) {
    form = 'sdc';
    const skew = Math.abs(Date.now() - Date.parse(req.headers.date)) / 1000;
    if (!(skew <= 300)) return { ok: false, code: 'InvalidCredentials', reason: 'clock skew of ' + skew + 's' };
    parsed = { scheme: 'Signature', keyId: sdc[1], algorithm: sdc[2].toUpperCase(),
      params: { keyId: sdc[1], algorithm: sdc[2], signature: sdc[3] }, signingString: req.headers.date };
  } else {
    form = 'cavage';
    try {
      parsed = httpSignature.parseRequest({ method: req.method, url: req.url, httpVersion: '1.1',
        headers: req.headers }, { clockSkew: 300 });
    } catch (e) {
      return { ok: false, code: 'InvalidCredentials', reason: e.name + ': ' + e.message };
    }
  }
  if (parsed.keyId !== keyId) return { ok: false, code: 'InvalidCredentials', reason: parsed.keyId + ' is not a key of this account' };
  let good;
  try {
    good = httpSignature.verifySignature(parsed, key);
  } catch (e) {
    return { ok: false, code: 'InvalidCredentials', reason: e.name + ': ' + e.message };
  }
  if (!good) return { ok: false, code: 'InvalidCredentials', reason: 'the signature does not match (' + form + ' form)' };
  return { ok: true, form: form };
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let out;
  try { out = check(JSON.parse(line)); } catch (e) { out = { ok: false, code: 'InternalError', reason: String(e) }; }
  process.stdout.write(JSON.stringify(out) + '\n');
});
