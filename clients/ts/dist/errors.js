// Errors: every failed call rejects with a KvError carrying the server's
// code and details, as the Rust client's `Error` does.
/**
 * A failed call. `code` and the details are the server's (see kv's error
 * table); a call that got no kv answer is `BACKEND` when the server could
 * not be reached or answered 5xx (`status` 0 without an answer), and
 * `CONFIG` for any other answer (a wrong base URL).
 */
export class KvError extends Error {
    name = "KvError";
    /** The stable code, e.g. `"CONFLICT"`. */
    code;
    /** The HTTP status; 0 when no answer arrived. */
    status;
    /** The whole JSON body, for details not named below. */
    body;
    /** `CONFLICT`: the live row's version, `null` when there is no live row. */
    current_updated_at;
    /** `RATE_LIMITED`: how long to wait before writing again, in ms. */
    retry_after_ms;
    /** `VALIDATION_FAILED`: every broken constraint. */
    fields;
    /** The answer's `Retry-After`, in ms (429 and 503 answers). */
    retryAfterMs;
    constructor(body, status, options) {
        super(body.message, options?.cause === undefined ? undefined : { cause: options.cause });
        this.code = body.code;
        this.status = status;
        this.body = body;
        this.current_updated_at = body.current_updated_at;
        this.retry_after_ms = body.retry_after_ms;
        this.fields = body.fields;
        this.retryAfterMs = options?.retryAfterMs;
    }
    /** The error of an answer that is not 2xx. */
    static async fromResponse(response) {
        const retryAfter = Number(response.headers.get("Retry-After"));
        const retryAfterMs = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined;
        let body = null;
        try {
            body = await response.json();
        }
        catch {
            // Not JSON: not an answer of a kv router.
        }
        if (isErrorBody(body)) {
            return new KvError(body, response.status, { retryAfterMs });
        }
        const code = response.status >= 500 ? "BACKEND" : "CONFIG";
        const message = code === "BACKEND"
            ? `the server answered ${response.status} without a kv error; retry later`
            : `the server answered ${response.status} without a kv error: is the base URL a kv router?`;
        return new KvError({ code, message }, response.status, { retryAfterMs });
    }
    /** A request that got no answer (the server is down, the network failed). */
    static unreachable(cause) {
        const reason = cause instanceof Error ? cause.message : String(cause);
        return new KvError({ code: "BACKEND", message: `the server could not be reached: ${reason}` }, 0, { cause });
    }
}
/** Whether `error` is a KvError with this code (or any code). */
export function isKvError(error, code) {
    return error instanceof KvError && (code === undefined || error.code === code);
}
function isErrorBody(body) {
    if (typeof body !== "object" || body === null)
        return false;
    const { code, message } = body;
    return typeof code === "string" && typeof message === "string";
}
