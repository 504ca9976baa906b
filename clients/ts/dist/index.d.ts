export { createKvClient, type CallOptions, type HistoryOp, type HistoryPage, type KvClient, type KvClientBase, type KvClientHistory, type KvClientOptions, type KvClientRestore, type KvHistoryEntry, type KvRow, type KvTable, type Page, type PageRequest, type RevertOptions, } from "./client.js";
export type { ErrorCode } from "./codes.js";
export { isKvError, KvError, type FieldError, type KvErrorBody } from "./errors.js";
export type { Watch, WatchOptions, WatchState, WatchStatus } from "./watch.js";
