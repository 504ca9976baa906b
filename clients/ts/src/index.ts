// kv's TypeScript client: the routes of a table's router, typed by the
// bindings kv generates from the Rust schema (`kv_runtime::ts`), so that
// a misspelled key is a compile error in the browser too.

export {
  createKvClient,
  type CallOptions,
  type HistoryOp,
  type HistoryPage,
  type KvClient,
  type KvClientBase,
  type KvClientHistory,
  type KvClientOptions,
  type KvClientRestore,
  type KvHistoryEntry,
  type KvRow,
  type KvTable,
  type Page,
  type PageRequest,
  type RevertOptions,
} from "./client.js";
export type { ErrorCode } from "./codes.js";
export { isKvError, KvError, type FieldError, type KvErrorBody } from "./errors.js";
export type { Watch, WatchOptions, WatchState, WatchStatus } from "./watch.js";
