// Node comparison rows: the original asterisk-ami (node) and asterisk-manager, through their public
// event APIs, against the same firehose as the Python rows. Run by run.py with NODE_PATH pointing at
// benchmarks/.vendor/node/node_modules (run.py --install-comparisons puts them there with npm):
//
//   node benchmarks/node_client.js asterisk-ami|asterisk-manager PORT EVENTS USERNAME SECRET
//
// Counts in the user's callback, from the first frame to the last, like scenarios.py, and prints
// `RESULT {json}` as its last line.
'use strict';

const [which, portText, eventsText, USERNAME, SECRET] = process.argv.slice(2);
const port = Number(portText);
const events = Number(eventsText);
const TIMEOUT_MS = 300000;

let count = 0;
let t0 = 0n;
let t1 = 0n;
let target = events;
let finished = false;
let client = null;

function finish() {
  if (finished) return;
  finished = true;
  if (!t1) t1 = process.hrtime.bigint();
  const seconds = Math.max(Number(t1 - t0) / 1e9, 1e-9);
  const rate = count > 1 ? (count - 1) / seconds : 0;
  const result = {
    frames: count,
    seconds: Math.round(seconds * 1e4) / 1e4,
    rate: Math.round(rate * 10) / 10,
    complete: count >= target,
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 102.4) / 10,
    node: process.version,
  };
  console.log('RESULT ' + JSON.stringify(result));
  process.exit(0);
}

function onFrame() {
  count += 1;
  if (count === 1) {
    t0 = process.hrtime.bigint();
  } else if (count >= target) {
    t1 = process.hrtime.bigint();
    setImmediate(finish);
  }
}

if (which === 'asterisk-ami') {
  // the original: every frame (the login response too) reaches ami_data
  const AsteriskAmi = require('asterisk-ami');
  target = events + 1;
  client = new AsteriskAmi({ host: '127.0.0.1', port, username: USERNAME, password: SECRET });
  client.on('ami_data', onFrame);
  client.on('ami_socket_close', finish);
  client.connect();
} else if (which === 'asterisk-manager') {
  // events only: managerevent fires for frames with an Event header
  const Manager = require('asterisk-manager');
  client = Manager(port, '127.0.0.1', USERNAME, SECRET, true);
  client.on('managerevent', onFrame);
  client.on('close', finish);
} else {
  console.error('usage: node node_client.js asterisk-ami|asterisk-manager PORT EVENTS USERNAME SECRET');
  process.exit(2);
}
setTimeout(finish, TIMEOUT_MS).unref();
