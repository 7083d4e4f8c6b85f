// 64-bit WIT integers as QuickJS's bindings want them: a Number (exact up to
// 2^53, and for larger powers of two; other large values are rounded).

/** The value the bindings take for a WIT s64 or u64. */
export const toInt64 = (value) => Number(value);
