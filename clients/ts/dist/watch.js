// `watch`: a key's states over `GET /{key}/events`, reconnecting with
// backoff, the first state after a reconnect flagged `resynced`.
import { KvError } from "./errors.js";
import { readEvents } from "./sse.js";
/** Starts a watch; `connect` opens one stream. */
export function startWatch(connect, onState, options = {}) {
    const abort = new AbortController();
    const maxDelay = options.maxDelayMs ?? 30_000;
    let minDelay = options.minDelayMs ?? 1000;
    let status = "connecting";
    let hadState = false;
    const setStatus = (next) => {
        if (status === "closed" || status === next)
            return;
        status = next;
        options.onStatus?.(next);
    };
    const report = (error) => {
        if (!abort.signal.aborted)
            options.onError?.(error);
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
                }
                else if (response.body) {
                    setStatus("live");
                    await readEvents(response.body, (event) => {
                        if (abort.signal.aborted)
                            return;
                        if (event.type === "message") {
                            let row;
                            try {
                                row = JSON.parse(event.data);
                            }
                            catch {
                                return;
                            }
                            onState({ row, resynced: resync });
                            resync = false;
                            hadState = true;
                            failures = 0;
                        }
                        else if (event.type === "kv-error") {
                            try {
                                report(new KvError(JSON.parse(event.data), response.status));
                            }
                            catch {
                                // A malformed error event says nothing.
                            }
                        }
                    }, (ms) => {
                        if (options.minDelayMs === undefined)
                            minDelay = ms;
                    });
                    // The server ended the stream (it restarted or shut down).
                }
            }
            catch (cause) {
                if (abort.signal.aborted)
                    return;
                report(KvError.unreachable(cause));
            }
            if (abort.signal.aborted)
                return;
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
function sleep(ms, signal) {
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
