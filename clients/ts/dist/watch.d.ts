import { KvError } from "./errors.js";
/** One state of a watched key, like the Rust `WatchEvent`. */
export interface WatchState<R> {
    /** The live row, or `null` when there is none (never written, deleted). */
    row: R | null;
    /**
     * `true` for the first state after a reconnect: changes made while the
     * stream was down were not delivered one by one, only this state.
     */
    resynced: boolean;
}
/**
 * `connecting` until the first stream opens, `live` while one is open,
 * `reconnecting` between streams, `closed` after `close()` or an answer
 * that retrying cannot change (a 4xx other than 408 and 429).
 */
export type WatchStatus = "connecting" | "live" | "reconnecting" | "closed";
/** Options of `watch`. */
export interface WatchOptions {
    /**
     * Errors: a refused stream (`TOO_MANY_STREAMS`), a lost connection
     * (`BACKEND`, status 0), a state the server could not read (a
     * `kv-error` event). The watch goes on unless its status becomes `closed`.
     */
    onError?: (error: KvError) => void;
    /** Status changes (not the `closed` of `close()` itself). */
    onStatus?: (status: WatchStatus) => void;
    /** The first wait before reconnecting, in ms; doubled per failed attempt. Default: the server's `retry` (1000). */
    minDelayMs?: number;
    /** The longest wait between attempts, in ms (a `Retry-After` may ask for longer). Default 30000. */
    maxDelayMs?: number;
}
/** A running watch. */
export interface Watch {
    /** Stops it: closes the stream, cancels a pending reconnect; no callback runs after. */
    close(): void;
    /** The current status. */
    readonly status: WatchStatus;
}
/** Starts a watch; `connect` opens one stream. */
export declare function startWatch<R>(connect: (signal: AbortSignal) => Promise<Response>, onState: (state: WatchState<R>) => void, options?: WatchOptions): Watch;
