// What the StarlingMonkey engine (componentize-js) can do that code must know of.

/** Promise jobs queued during a call run before the call returns to the host. */
export const PROMISE_JOBS_RUN_BEFORE_RETURN = true;
