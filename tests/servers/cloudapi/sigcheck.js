// sigcheck.js: the CloudAPI fake's independent HTTP Signature checker
// (npm http-signature 1.4.0 + sshpk 1.18.0, nothing of the project's
// signer). main.go starts it once and writes one JSON request per line
// ({method, url, headers (lower-case names)}); it answers one JSON line
// each: {ok, code, reason, form}.
//
// Two Authorization forms, as SmartDataCenter's CloudAPI takes them:
//   Signature keyId="/u/keys/fp",algorithm="rsa-sha256",signature="<b64>"
//     (draft-cavage: tests/servers/manta/httpsig-check.js, the Manta fake's
//     checker: http-signature's parseRequest and verifySignature)
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
const cavage = require('../manta/httpsig-check');

const key = sshpk.parseKey(fs.readFileSync(process.argv[2], 'utf8'), 'auto');
const keyId = process.argv[3] || process.env.SIGCHECK_KEY_ID; // the fake passes it in the environment

function check(req) {
  const authz = req.headers.authorization;
  if (!authz) return { ok: false, code: 'MissingParameter', reason: 'no Authorization header' };
  if (!req.headers.date) return { ok: false, code: 'MissingParameter', reason: 'no Date header' };
  const sdc = /^Signature keyId="([^"]*)",algorithm="([^"]*)" ([A-Za-z0-9+/=]+)$/.exec(authz);
  if (!sdc) {
    const r = cavage.verifyRequest({ method: req.method, url: req.url, httpVersion: '1.1', headers: req.headers },
      key, { keyId: keyId, clockSkew: 300 });
    if (!r.ok) return { ok: false, code: 'InvalidCredentials', reason: r.code + ': ' + r.reason };
    return { ok: true, form: 'cavage' };
  }
  const skew = Math.abs(Date.now() - Date.parse(req.headers.date)) / 1000;
  if (!(skew <= 300)) return { ok: false, code: 'InvalidCredentials', reason: 'clock skew of ' + skew + 's' };
  if (sdc[1] !== keyId) return { ok: false, code: 'InvalidCredentials', reason: sdc[1] + ' is not a key of this account' };
  const alg = sdc[2].toLowerCase();
  let good;
  try {
    if (alg === 'ecdsa-sha384') {
      if (key.type !== 'ecdsa') return { ok: false, code: 'InvalidCredentials', reason: 'not an ECDSA key' };
      const v = key.createVerify('sha384');
      v.update(req.headers.date);
      good = v.verify(sdc[3], 'base64');
    } else {
      const parsed = { scheme: 'Signature', keyId: sdc[1], algorithm: alg.toUpperCase(),
        params: { keyId: sdc[1], algorithm: alg, signature: sdc[3] }, signingString: req.headers.date };
      good = httpSignature.verifySignature(parsed, key);
    }
  } catch (e) {
    return { ok: false, code: 'InvalidCredentials', reason: e.name + ': ' + e.message };
  }
  if (!good) return { ok: false, code: 'InvalidCredentials', reason: 'the signature does not match (sdc form)' };
  return { ok: true, form: 'sdc' };
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let out;
  try { out = check(JSON.parse(line)); } catch (e) { out = { ok: false, code: 'InternalError', reason: String(e) }; }
  process.stdout.write(JSON.stringify(out) + '\n');
});
