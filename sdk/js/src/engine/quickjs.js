// What the QuickJS engine (componentize-qjs) can do that code must know of.

/** Promise jobs queued during a call run only when the next call starts:
 * work behind a promise never finishes within the call that began it. */
export const PROMISE_JOBS_RUN_BEFORE_RETURN = false;
