/** What IPC (and google.protobuf.Value) can carry as it is: anything JSON.stringify accepts — not undefined, a function, a symbol or a bigint. */
export function isJsonValue(value: unknown): boolean {
  try {
    return JSON.stringify(value) !== undefined;
  } catch {
    return false;
  }
}
