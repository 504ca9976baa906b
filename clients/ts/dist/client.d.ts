import { type Watch, type WatchOptions, type WatchState } from "./watch.js";
/** A row as the routes answer it (the generated `<Name>Row` types are rows). */
export interface KvRow<K extends string = string, V = unknown> {
    key: K;
    value: V;
    /** When the row was first written, in ms since the Unix epoch. */
    created_at: number;
    /** When the row was last written: its version. */
    updated_at: number;
    deleted_at?: number;
    updated_by?: string;
}
/** What a client is typed by: the generated `<Name>Table` types are tables. */
export interface KvTable {
    name: string;
    key: string;
    value: unknown;
    row: KvRow;
    softDelete: boolean;
    history: boolean;
}
/** What a change did (`op` of a history entry). */
export type HistoryOp = "set" | "rm" | "restore" | "purge";
/** One committed change of a row, as `history` answers it. */
export interface KvHistoryEntry<K extends string = string, V = unknown> {
    key: K;
    /** The change's version (the row's `updated_at` after it): what `revert` takes. */
    version: number;
    op: HistoryOp;
    /** The row's value from this change on, or the value it had when deleted (`rm`, `purge`). */
    value: V;
    /** The schema version that wrote the value (the server migrated it to its own). */
    schema_version: number;
    /** When the change was made, in ms since the Unix epoch. */
    at: number;
    /** Who made it; absent for an anonymous caller. */
    updated_by?: string;
}
/** One page of a row's history, newest first. */
export interface HistoryPage<E> {
    entries: E[];
    is_done: boolean;
    /** Pass it as `cursor` for the next (older) page; `null` when done. */
    continue_cursor: string | null;
    /** Records the server cannot read (a newer schema wrote them). */
    unreadable?: {
        version: number;
        op: HistoryOp;
        schema_version: number;
        reason: string;
    }[];
}
/** Options of `revert`. */
export interface RevertOptions extends CallOptions {
    /**
     * Revert only if the row still has this version (a row's `updated_at`, as
     * the page showing the history last saw it), else reject with `CONFLICT`.
     * Without it, the server reverts over the row as it reads it.
     */
    expectedUpdatedAt?: number;
}
/** One page of live rows in key order (`list`). */
export interface Page<R> {
    page: R[];
    is_done: boolean;
    /** Pass it as `cursor` for the next page; `null` when done. */
    continue_cursor: string | null;
}
/** Which page `list` reads: `limit` 1 to 1000 (default 100). */
export interface PageRequest {
    cursor?: string | null;
    limit?: number;
}
/** Per-call options. */
export interface CallOptions {
    signal?: AbortSignal;
}
/** Options of `createKvClient`. */
export interface KvClientOptions {
    /** Headers sent with every request (credentials); a function is called per request. */
    headers?: HeadersInit | (() => HeadersInit | Promise<HeadersInit>);
    /** The `fetch` to use; default the global one. */
    fetch?: (input: string, init: RequestInit) => Promise<Response>;
    /** The requests' `credentials`; default `"same-origin"` (cookies to the page's own origin). */
    credentials?: RequestCredentials;
}
/** The calls of every table. */
export interface KvClientBase<T extends KvTable> {
    /** Where the table's router is mounted, without a trailing slash. */
    readonly baseUrl: string;
    /** The live row, or `null`. Public. */
    get(key: T["key"], options?: CallOptions): Promise<T["row"] | null>;
    /** One page of live rows in key order. Write role. */
    list(page?: PageRequest, options?: CallOptions): Promise<Page<T["row"]>>;
    /** Writes the value whatever the row holds. Write role. */
    set(key: T["key"], value: T["value"], options?: CallOptions): Promise<T["row"]>;
    /**
     * Writes only over version `expectedUpdatedAt` (a row's `updated_at`);
     * otherwise rejects with `CONFLICT`, carrying `current_updated_at`.
     */
    setExpecting(key: T["key"], value: T["value"], expectedUpdatedAt: number, options?: CallOptions): Promise<T["row"]>;
    /** Writes only when there is no live row; otherwise rejects with `CONFLICT`. */
    setIfAbsent(key: T["key"], value: T["value"], options?: CallOptions): Promise<T["row"]>;
    /** Deletes the row (soft on soft-delete tables); `false` when there was no live row. */
    rm(key: T["key"], options?: CallOptions): Promise<boolean>;
    /**
     * Follows the key: `onState` gets its current state, then one per
     * change; reconnects with backoff when the stream breaks or is refused.
     */
    watch(key: T["key"], onState: (state: WatchState<T["row"]>) => void, options?: WatchOptions): Watch;
}
/** `restore`, on tables declared with `soft_delete` only. */
export interface KvClientRestore<T extends KvTable> {
    /** Brings a soft-deleted row back (a live row comes back unchanged); `NOT_FOUND` when there is none. */
    restore(key: T["key"], options?: CallOptions): Promise<T["row"]>;
}
/** `history` and `revert`, on tables declared with `history` only. */
export interface KvClientHistory<T extends KvTable> {
    /** One page of the row's history, newest first (`limit` 1 to 1000, default 100). Write role. */
    history(key: T["key"], page?: PageRequest, options?: CallOptions): Promise<HistoryPage<KvHistoryEntry<T["key"], T["value"]>>>;
    /**
     * Writes the value of the history entry `version` back (a change of its
     * own, recorded too); `CONFLICT` when the row changed meanwhile,
     * `NOT_FOUND` for a version the history does not hold. Write role.
     */
    revert(key: T["key"], version: number, options?: RevertOptions): Promise<T["row"]>;
}
/**
 * A client of table `T`: `restore` exists only when `T` has soft delete,
 * `history` and `revert` only when it has history.
 */
export type KvClient<T extends KvTable> = KvClientBase<T> & (T["softDelete"] extends true ? KvClientRestore<T> : unknown) & (T["history"] extends true ? KvClientHistory<T> : unknown);
/**
 * A client of the router mounted at `baseUrl` (`"/api/kv/site"`, or an
 * absolute URL), typed by the table's generated bindings:
 * `createKvClient<SiteBannerTable>("/api/kv/site")`.
 */
export declare function createKvClient<T extends KvTable>(baseUrl: string, options?: KvClientOptions): KvClient<T>;
