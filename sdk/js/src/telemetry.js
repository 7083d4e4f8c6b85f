// Custom spans and log records. Spans nest under the host's span for the
// current run or tool call, and the host's own spans opened inside one nest under it.

import { Span, log as witLog } from 'glassbox:agent/telemetry@0.1.0';
import { toInt64 } from '#int64';

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error']);
const S64 = [-(2n ** 63n), 2n ** 63n - 1n];

function value(v) {
  if (typeof v === 'boolean') return { tag: 'boolean', val: v };
  if (typeof v === 'bigint' && v >= S64[0] && v <= S64[1]) return { tag: 's64', val: toInt64(v) };
  if (typeof v === 'number' && Number.isSafeInteger(v)) return { tag: 's64', val: toInt64(v) };
  if (typeof v === 'number') return { tag: 'f64', val: v };
  if (Array.isArray(v) && v.every((item) => typeof item === 'string')) return { tag: 'string-list', val: v };
  return { tag: 'string', val: typeof v === 'string' ? v : String(v) };
}

function attributes(given = {}) {
  return Object.entries(given).map(([key, v]) => ({ key, value: value(v) }));
}

/** A span the code holds: `set`, `event`, `fail`, `end`. */
class OpenSpan {
  constructor(name, given) {
    this.inner = new Span(name, attributes(given));
  }
  set(given) { this.inner.setAttributes(attributes(given)); }
  event(name, given) { this.inner.addEvent(name, attributes(given)); }
  fail(description) { this.inner.setStatus('error', description); }
  end() { this.inner.end(); }
}

/** Runs `work(span)` inside a span named `name`; when it throws, the span ends
 * with an error status saying what was thrown, and the error goes on. */
export function span(name, given, work) {
  if (typeof given === 'function') {
    [given, work] = [{}, given];
  }
  const open = new OpenSpan(name, given);
  try {
    return work(open);
  } catch (thrown) {
    open.fail(thrown instanceof Error ? `${thrown.name}: ${thrown.message}` : String(thrown));
    throw thrown;
  } finally {
    open.end();
  }
}

/** Writes a log record, correlated with the current span. */
export function log(message, level = 'info', given = {}) {
  if (!LEVELS.has(level)) {
    throw new TypeError(`unknown log level ${JSON.stringify(level)}; use one of ${[...LEVELS].join(', ')}`);
  }
  witLog(level, message, attributes(given));
}
