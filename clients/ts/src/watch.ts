// `watch`: a key's states over `GET /{key}/events`, reconnecting with
// backoff, the first state after a reconnect flagged `resynced`.

import { KvError } from "./errors.js";
import { readEvents } from "./sse.js";

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
export function startWatch<R>(
  connect: (signal: AbortSignal) => Promise<Response>,
  onState: (state: WatchState<R>) => void,
  options: WatchOptions = {},
): Watch {
  const abort = new AbortController();
  const maxDelay = options.maxDelayMs ?? 30_000;
  let minDelay = options.minDelayMs ?? 1000;
  let status: WatchStatus = "connecting";
  let hadState = false;

  const setStatus = (next: WatchStatus) => {
    if (status === "closed" || status === next) return;
    status = next;
    options.onStatus?.(next);
  };
  const report = (error: KvError) => {
    if (!abort.signal.aborted) options.onError?.(error);
  };

  const run = async () => {
    let failures = 0;
    while (!abort.signal.aborted) {
      let retryAfter = 0;
      let resync = hadState;
      try {
        const response = await connect(abort.signal);
        if (!response.ok) {
          const error = await KvError.fromResponse(response);
          report(error);
          const final = response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429;
          if (final) {
            setStatus("closed");
            return;
          }
          retryAfter = error.retryAfterMs ?? 0;
        } else if (response.body) {
          setStatus("live");
          await readEvents(
            response.body,
            (event) => {
              if (abort.signal.aborted) return;
              if (event.type === "message") {
                let row: R | null;
                try {
                  row = JSON.parse(event.data) as R | null;
                } catch {
                  return;
                }
                onState({ row, resynced: resync });
                resync = false;
                hadState = true;
                failures = 0;
              } else if (event.type === "kv-error") {
                try {
                  report(new KvError(JSON.parse(event.data), response.status));
                } catch {
                  // A malformed error event says nothing.
                }
              }
            },
            (ms) => {
              if (options.minDelayMs === undefined) minDelay = ms;
            },
          );
          // The server ended the stream (it restarted or shut down).
        }
      } catch (cause) {
        if (abort.signal.aborted) return;
        report(KvError.unreachable(cause));
      }
      if (abort.signal.aborted) return;
      setStatus("reconnecting");
      const backoff = Math.min(minDelay * 2 ** failures, maxDelay);
      const wait = Math.max(backoff * (1 + Math.random() * 0.2), retryAfter);
      failures += 1;
      await sleep(wait, abort.signal);
    }
  };
  void run();

  return {
    close() {
      status = "closed";
      abort.abort();
    },
    get status() {
      return status;
    },
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
