#!/usr/bin/env node
'use strict';
/*
 * The adapter protocol (spec/protocol.schema.json) for the JavaScript port: one JSON request
 * per line on stdin, one JSON response per line on stdout, in order, with the request's id.
 *   actiongate-conformance run --target "cmd:node examples/ports/javascript/adapter.js"
 */
const readline = require('node:readline');
const ag = require('./actiongate.js');

const IMPLEMENTATION = { name: 'actiongate-js', version: '1.0.0', language: 'javascript' };
const OK = { ok: true };
const isObject = (value) => typeof value === 'object' && value !== null;

// Numbers JSON cannot write travel as {"$float": "NaN" | "Infinity" | "-Infinity"}.
const SPECIAL = new Map([['NaN', NaN], ['Infinity', Infinity], ['-Infinity', -Infinity]]);
const decodeNumber = (value) => (isObject(value) && SPECIAL.has(value.$float)
  ? SPECIAL.get(value.$float) : value);
const decodeFields = (object) => (isObject(object) && !Array.isArray(object) // a policy record
  ? Object.fromEntries(Object.entries(object).map(([k, v]) => [k, decodeNumber(v)])) : object);

/**
 * JSON text of a response. JSON.stringify writes -0 as "0" (read back as +0) and NaN as null,
 * and throws on a BigInt. A finite number is String(x), the shortest text that reads back as
 * the same binary64 anywhere (TIME-2); Python reads "1" as an int, equal to 1.0 all the same.
 */
function toJSON(value) {
  if (typeof value === 'bigint') return value.toString(); // exact beyond 2^53
  if (typeof value === 'number') {
    if (Object.is(value, -0)) return '-0.0';
    return Number.isFinite(value) ? String(value) : toJSON({ $float: String(value) });
  }
  if (Array.isArray(value)) return `[${value.map(toJSON).join(',')}]`;
  if (!isObject(value)) return JSON.stringify(value); // strings, booleans, null
  const members = Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}:${toJSON(v)}`);
  return `{${members.join(',')}}`;
}

let store = new ag.MemoryStore();

/**
 * burst: JavaScript runs on one thread and ag.check() never yields (no await, no I/O), so no
 * two checks can overlap: each is atomic (RES-1) by construction. One after another is thus as
 * concurrent as this port gets, and the instants say so: the k-th check runs at time
 * start + k * step, bracketed by invoke_ns and return_ns (monotonic BigInt nanoseconds, which
 * may exceed 2^53), in disjoint intervals. A port whose store awaits (say, over Redis) must
 * start its checks together instead, e.g. with Promise.all.
 */
function burst({ gate, policy, count, start, step }) {
  const results = [];
  for (let k = 0; k < count; k += 1) {
    const invoke_ns = process.hrtime.bigint();
    const now = start + k * step;
    const decision = ag.check(store, gate, policy, now);
    results.push({ now, invoke_ns, return_ns: process.hrtime.bigint(), decision });
  }
  return { burst: results };
}

// Every op and its answer; an InvalidInput or a StoreError thrown here becomes an error.
const OPS = {
  hello: () => ({ protocol: 1, implementation: IMPLEMENTATION, spec_version: ag.SPEC_VERSION,
    capabilities: ['store_faults', 'burst'] }),
  reset: () => { store = new ag.MemoryStore(); return OK; }, // empty and working
  check: ({ gate, policy, now }) =>
    ({ decision: ag.check(store, gate, decodeFields(policy), decodeNumber(now)) }),
  clear: ({ gate }) => { store.clear(ag.validGate(gate)); return OK; },
  clear_all: () => { store.clearAll(); return OK; },
  store_fail: () => { store.failing = true; return OK; },
  store_recover: () => { store.failing = false; return OK; },
  burst,
  bye: () => OK,
};

const error = (kind, field, message) => ({ error: { kind, field, message } });

function answer(request) {
  if (!Object.hasOwn(OPS, request.op)) return error('bad_request', null, `no op ${request.op}`);
  try {
    return OPS[request.op](request);
  } catch (failure) {
    const { kind, field, message } = failure;
    if (failure instanceof ag.InvalidInput) return error(kind, field, message);
    if (failure instanceof ag.StoreError) return error('store_error', null, message); // CLR-1
    throw failure; // a bug: crash, and the runner shows this stack from stderr
  }
}

/** ADP-1: a line that is not JSON, or not an object with an id >= 0, gets id null, undone. */
function readable(line) {
  let request;
  try {
    request = JSON.parse(line);
  } catch {
    return undefined;
  }
  return isObject(request) && Number.isSafeInteger(request.id) && request.id >= 0
    ? request : undefined;
}

// Requests may arrive before earlier responses are read: each line is answered in turn.
const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => {
  const request = readable(line);
  const response = request === undefined
    ? { id: null, ...error('bad_request', null, `not an object with an id: ${line.slice(0, 80)}`) }
    : { id: request.id, ...answer(request) };
  process.stdout.write(`${toJSON(response)}\n`);
  if (request?.op === 'bye') lines.close();
});
