// The WIT `error` variant as JavaScript errors, mapped both ways: a failed host
// call throws the matching `GlassboxError`, and a `GlassboxError` thrown by a
// tool or an agent reaches the host as that case.

import { toInt64 } from '#int64';

/** A failure the host or a component reported; `kind` is the WIT case. */
export class GlassboxError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'GlassboxError';
    this.kind = kind;
  }
}

/** The provider refused because of rate or quota limits. */
export class RateLimited extends GlassboxError {
  constructor(message, retryAfterMs) {
    super('rate-limited', message);
    this.name = 'RateLimited';
    this.retryAfterMs = retryAfterMs;
  }
}

function errorCase(name, kind) {
  return class extends GlassboxError {
    constructor(message) {
      super(kind, message);
      this.name = name;
    }
  };
}

export const Timeout = errorCase('Timeout', 'timeout');
export const InvalidRequest = errorCase('InvalidRequest', 'invalid-request');
export const NotAllowed = errorCase('NotAllowed', 'not-allowed');
export const NotFound = errorCase('NotFound', 'not-found');
export const InvalidArguments = errorCase('InvalidArguments', 'invalid-arguments');
export const ToolFailed = errorCase('ToolFailed', 'tool-failed');
export const Crashed = errorCase('Crashed', 'crashed');
export const ProviderError = errorCase('ProviderError', 'provider');
export const BudgetExceeded = errorCase('BudgetExceeded', 'budget-exceeded');
export const LimitExceeded = errorCase('LimitExceeded', 'limit-exceeded');
export const Unavailable = errorCase('Unavailable', 'unavailable');

const CLASSES = Object.fromEntries(
  [Timeout, InvalidRequest, NotAllowed, NotFound, InvalidArguments, ToolFailed, Crashed,
    ProviderError, BudgetExceeded, LimitExceeded, Unavailable].map((c) => [new c('').kind, c]),
);

/** The error for a WIT `error` the host returned. */
export function fromWit(error) {
  if (error.tag === 'rate-limited') {
    const after = error.val.retryAfterMs;
    return new RateLimited(error.val.message, after === undefined ? undefined : Number(after));
  }
  const known = CLASSES[error.tag];
  return known ? new known(error.val) : new GlassboxError(error.tag, String(error.val));
}

/** The WIT `error` for what a component threw: its case if a `GlassboxError`. */
export function toWit(error) {
  if (error instanceof RateLimited) {
    const after = error.retryAfterMs;
    return { tag: 'rate-limited', val: { message: error.message, retryAfterMs: after === undefined ? undefined : toInt64(after) } };
  }
  if (error instanceof GlassboxError && CLASSES[error.kind]) {
    return { tag: error.kind, val: error.message };
  }
  return undefined;
}

/** Calls a host import, throwing a `GlassboxError` where it returns a WIT error. */
export function hostCall(call, ...args) {
  try {
    return call(...args);
  } catch (thrown) {
    if (thrown && typeof thrown === 'object' && 'payload' in thrown) {
      throw fromWit(thrown.payload);
    }
    throw thrown;
  }
}

/** What to return to the host for what an export threw: an uncaught error
 * would trap the instance, so it is logged and becomes `fallback`'s case. */
export function exportError(thrown, fallback, log) {
  const known = toWit(thrown);
  if (known) {
    return { payload: known };
  }
  const described = thrown instanceof Error ? `${thrown.name}: ${thrown.message}` : String(thrown);
  log(thrown instanceof Error && thrown.stack ? `${described}\n${thrown.stack}` : described, 'error', {
    'exception.type': thrown instanceof Error ? thrown.name : typeof thrown,
  });
  return { payload: { tag: fallback, val: described } };
}
