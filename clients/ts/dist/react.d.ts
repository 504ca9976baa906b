import type { KvClient, KvTable } from "./client.js";
import { KvError } from "./errors.js";
import type { WatchStatus } from "./watch.js";
/** Options of `update`. */
export interface UpdateOptions {
    /**
     * The version the new value is based on: a row's `updated_at` writes
     * only over that version (`setExpecting`), `null` only when there is no
     * live row (`setIfAbsent`); left out, the write is unconditional (`set`).
     */
    expectedUpdatedAt?: number | null;
}
/** What `useKv` returns on every table. */
export interface UseKvBase<T extends KvTable> {
    /** The live row; `null` when there is none, or while loading. */
    data: T["row"] | null;
    /** The last failure of the stream or of a call below; cleared by the next state or success. */
    error: KvError | null;
    /** `true` until the first state arrives. */
    loading: boolean;
    /** The event stream's status. */
    status: WatchStatus;
    /** Writes the value (see `UpdateOptions`); rejects with the `KvError` it also puts in `error`. */
    update(value: T["value"], options?: UpdateOptions): Promise<T["row"]>;
    /** Deletes the row (`rm`). */
    remove(): Promise<boolean>;
}
/** `restore`, on soft-delete tables only. */
export interface UseKvRestore<T extends KvTable> {
    /** Brings the soft-deleted row back. */
    restore(): Promise<T["row"]>;
}
/** What `useKv` returns: `restore` only when the table has soft delete. */
export type UseKv<T extends KvTable> = UseKvBase<T> & (T["softDelete"] extends true ? UseKvRestore<T> : unknown);
/**
 * The row of `key`, loaded and then kept current over the key's event
 * stream (reconnecting by itself), with the calls that change it. The
 * stream closes when the component unmounts or `client` or `key` change:
 * create the client once (at module level, or with `useMemo`), not on
 * every render.
 */
export declare function useKv<T extends KvTable>(client: KvClient<T>, key: T["key"]): UseKv<T>;
