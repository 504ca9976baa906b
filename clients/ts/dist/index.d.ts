export { createKvClient, type CallOptions, type KvClient, type KvClientBase, type KvClientOptions, type KvClientRestore, type KvRow, type KvTable, type Page, type PageRequest, } from "./client.js";
export type { ErrorCode } from "./codes.js";
export { isKvError, KvError, type FieldError, type KvErrorBody } from "./errors.js";
export type { Watch, WatchOptions, WatchState, WatchStatus } from "./watch.js";
