// 64-bit WIT integers as StarlingMonkey's bindings want them: BigInt.

/** The value the bindings take for a WIT s64 or u64. */
export const toInt64 = (value) => BigInt(value);
