'use strict';
/*
 * ActionGate 1.0 in JavaScript, citing SEMANTICS.md's clauses; no dependencies, clock or I/O.
 * Theory of operation: check(store, gate, policy, now) validates the gate, the policy (records
 * of exactly their fields, ID-4 and POL-7), then the time (POL-5), or throws InvalidInput; has the store run decide() on the gate's EventLog
 * atomically (RES-1); turns a StoreError into the STORE_ERROR decision (ERR-1); and returns the
 * record of spec/decision.schema.json (DEC-1..4). decide() holds the rules in ORD-1's order:
 * prune, cooldown, rate limit, reserve. JS numbers are binary64, so each subtraction and
 * comparison is exactly the spec's (TIME-2), with no epsilon.
 */

const SPEC_VERSION = '1.0';
const TIME_LIMIT = 2 ** 53; // TIME-3
const GATE_FIELDS = ['namespace', 'action', 'principal']; // POL-5: validated in this order
// With the u flag a valid surrogate pair is one code point, so only a lone surrogate matches.
const LONE_SURROGATE = /\p{Surrogate}/u;
// POL-1..4, in POL-5's order: a field, its rule, the rule in words. In JS a boolean is not a
// number, and Number.isSafeInteger is true exactly for integers with |v| <= 2^53 - 1.
const POLICY_RULES = [
  ['max_calls', (v) => Number.isSafeInteger(v) && v >= 0, 'an integer from 0 to 2^53 - 1'],
  ['window', (v) => v === null || (Number.isFinite(v) && v > 0), 'null or a finite number > 0'],
  ['cooldown', (v) => Number.isFinite(v) && v >= 0, 'a finite number >= 0'], // -0 >= 0 holds
  ['mode', (v) => v === 'HARD' || v === 'SOFT', 'HARD or SOFT'],
  ['on_store_error', (v) => v === 'FAIL_CLOSED' || v === 'FAIL_OPEN', 'FAIL_CLOSED or FAIL_OPEN'],
];

/** Rejected input: kind is invalid_gate, invalid_policy or invalid_time; field names it. */
class InvalidInput extends Error {
  constructor(kind, field, rule, value) {
    const shown = typeof value === 'number' || value === undefined ? value : JSON.stringify(value);
    super(`${field} must be ${rule}, got ${shown}`);
    this.kind = kind;
    this.field = field;
  }
}

/** The store could not carry out an operation (ERR-1, CLR-1). */
class StoreError extends Error {}

/** A JSON object (an array is none): what a gate or policy record must be (ID-4, POL-7). */
const isRecord = (value) => typeof value === 'object' && value !== null && !Array.isArray(value);
// Code point order: each code point as six hex digits, then <. (< alone compares UTF-16 units,
// which puts U+1F680 before U+FF5E.)
const codePoints = (key) => Array.from(key, (c) => c.codePointAt(0).toString(16).padStart(6, '0'))
  .join('');

/**
 * ID-4, POL-7 in POL-5's order: the record, then each field by its rule (a missing one is
 * undefined, which no rule accepts: a record has no defaults), then a member of another name,
 * the least in code point order. Returns the fields, in order, or throws naming the first fault.
 */
function validRecord(record, what, kind, rules) {
  if (!isRecord(record)) throw new InvalidInput(kind, what, 'an object', record);
  for (const [field, valid, rule] of rules) {
    if (!Object.hasOwn(record, field) || !valid(record[field])) {
      throw new InvalidInput(kind, field, rule, record[field]);
    }
  }
  const fields = rules.map(([field]) => field);
  const [unknown] = Object.keys(record).filter((key) => !fields.includes(key))
    .sort((a, b) => (codePoints(a) < codePoints(b) ? -1 : 1));
  if (unknown !== undefined) throw new InvalidInput(kind, unknown, `absent (no field of a ${what})`, record[unknown]);
  return Object.fromEntries(fields.map((field) => [field, record[field]]));
}

// ID-3: three strings of Unicode scalar values, in POL-5's order.
const GATE_RULES = GATE_FIELDS.map((field) => [field,
  (v) => typeof v === 'string' && !LONE_SURROGATE.test(v), 'a string of Unicode scalar values']);
const validGate = (gate) => validRecord(gate, 'gate', 'invalid_gate', GATE_RULES);
const validPolicy = (policy) => validRecord(policy, 'policy', 'invalid_policy', POLICY_RULES);

/** TIME-3: a finite number with -2^53 <= T <= 2^53. Returns it or throws (field now). */
function validTime(now) {
  if (Number.isFinite(now) && Math.abs(now) <= TIME_LIMIT) return now;
  throw new InvalidInput('invalid_time', 'now', 'a finite number within 2^53 of 0', now);
}

/** Binary search: the first i >= from with predicate(sorted[i]), predicate false then true. */
function firstIndex(sorted, from, predicate) {
  let [low, high] = [from, sorted.length];
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (predicate(sorted[middle])) high = middle;
    else low = middle + 1;
  }
  return low;
}

/**
 * A gate's state, its events' times: times[head..] sorted, times[..head] pruned and never read
 * again (RET-2). O(log n), but add() before later events (CLK-1) moves those up one place.
 */
class EventLog {
  #times = [];
  #head = 0;

  get size() { return this.#times.length - this.#head; }
  get last() { return this.#times[this.#times.length - 1]; } // the greatest event, if size > 0

  /** RET-1, RET-2: discard every event t < oldest, for good. */
  prune(oldest) {
    this.#head = firstIndex(this.#times, this.#head, (t) => t >= oldest);
    if (this.#head > this.#times.length / 2) { // free the pruned prefix, O(1) amortized
      this.#times = this.#times.slice(this.#head);
      this.#head = 0;
    }
  }

  /** RES-2: one more event at t, after any equal ones. */
  add(t) { this.#times.splice(firstIndex(this.#times, this.#head, (x) => x > t), 0, t); }
}

/** The decision procedure on a gate's log (ORD-1). Changes only the log. */
function decide(log, now, policy) {
  if (policy.window !== null) log.prune(now - policy.window); // RET-1; RET-3: null keeps all
  const count = log.size; // |R|
  const since = count === 0 ? null : now - log.last; // DEC-3: T - last, before reserving
  const blocked = (reason) => ({ status: 'BLOCK', reason, calls_in_window: count,
    time_since_last: since });
  // CD-1 before RATE-1 (ORD-1). A negative age (backwards clock, CLK-1) is < any cooldown.
  if (policy.cooldown > 0 && since !== null && since < policy.cooldown) return blocked('COOLDOWN');
  if (count >= policy.max_calls) return blocked('RATE_LIMIT');
  log.add(now); // RES-1: an ALLOW records exactly one event at T; DEC-2 counts it
  return { status: 'ALLOW', reason: null, calls_in_window: count + 1, time_since_last: since };
}

/** ID-2: a JSON array of the three strings, an injective key. */
const keyOf = (gate) => JSON.stringify([gate.namespace, gate.action, gate.principal]);

/**
 * Every gate's EventLog. JS runs one thread and nothing here awaits, so each call ends before
 * another starts: checks are atomic (RES-1). While `failing` (store_fail) every call throws.
 */
class MemoryStore {
  #logs = new Map(); // keyOf(gate) -> EventLog
  failing = false;

  checkAndReserve(gate, now, policy) {
    this.#working(); // ERR-2: a failed check neither prunes nor records
    const key = keyOf(gate);
    const log = this.#logs.get(key) ?? new EventLog();
    const outcome = decide(log, now, policy);
    if (log.size > 0) this.#logs.set(key, log);
    else this.#logs.delete(key); // no events: the state of a gate never checked
    return outcome;
  }

  clear(gate) { this.#working(); this.#logs.delete(keyOf(gate)); } // CLR-1
  clearAll() { this.#working(); this.#logs.clear(); } // CLR-2
  #working() { if (this.failing) throw new StoreError('the store is failing (store_fail)'); }
}

/** One check: the decision record of spec/decision.schema.json, or throws InvalidInput. */
function check(store, rawGate, rawPolicy, rawNow) {
  // POL-5: gate, then policy, then time, all before the store is touched (ERR-4).
  const gate = validGate(rawGate);
  const policy = validPolicy(rawPolicy);
  const now = validTime(rawNow);
  let outcome;
  try {
    outcome = store.checkAndReserve(gate, now, policy);
  } catch (error) {
    if (!(error instanceof StoreError)) throw error;
    // ERR-1, ERR-3: a failure is a decision. FAIL_OPEN allows, FAIL_CLOSED blocks.
    const status = policy.on_store_error === 'FAIL_OPEN' ? 'ALLOW' : 'BLOCK';
    outcome = { status, reason: 'STORE_ERROR', calls_in_window: 0, time_since_last: null };
  }
  // DEC-4: gate, policy and T echoed, no message. MODE-1: mode changes nothing here.
  return { schema_version: SPEC_VERSION, ...outcome, message: null, gate, policy, now };
}

module.exports = { SPEC_VERSION, InvalidInput, StoreError, validGate, validPolicy, validTime,
  EventLog, decide, MemoryStore, check };
