import type { ErrorCode } from "./codes.js";
/** One broken constraint of a value (`VALIDATION_FAILED`), by field path. */
export interface FieldError {
    /** The field's path within the value (`"message"`, `"items[2].name"`); empty for the value as a whole. */
    path: string;
    /** What is wrong with it. */
    message: string;
}
/** The JSON body of a kv error answer: `code`, `message` and the details of the code. */
export interface KvErrorBody {
    code: ErrorCode;
    message: string;
    table?: string;
    key?: string;
    reason?: string;
    op?: string;
    required?: string;
    /** `CONFLICT`: the live row's version, or `null` when there is no live row. */
    current_updated_at?: number | null;
    /** `RATE_LIMITED`: how long to wait before writing again. */
    retry_after_ms?: number;
    /** `VALIDATION_FAILED`: every broken constraint. */
    fields?: FieldError[];
    hook?: string;
    attempts?: number;
    /** `NOT_FOUND` of a `revert`: the version the history does not hold; `UNREADABLE`: the schema version. */
    version?: number;
    /** `TOO_MANY_STREAMS`: whose cap was reached. */
    scope?: "client" | "total";
    limit?: number;
}
/**
 * A failed call. `code` and the details are the server's (see kv's error
 * table); a call that got no kv answer is `BACKEND` when the server could
 * not be reached or answered 5xx (`status` 0 without an answer), and
 * `CONFIG` for any other answer (a wrong base URL).
 */
export declare class KvError extends Error {
    readonly name = "KvError";
    /** The stable code, e.g. `"CONFLICT"`. */
    readonly code: ErrorCode;
    /** The HTTP status; 0 when no answer arrived. */
    readonly status: number;
    /** The whole JSON body, for details not named below. */
    readonly body: KvErrorBody;
    /** `CONFLICT`: the live row's version, `null` when there is no live row. */
    readonly current_updated_at: number | null | undefined;
    /** `RATE_LIMITED`: how long to wait before writing again, in ms. */
    readonly retry_after_ms: number | undefined;
    /** `VALIDATION_FAILED`: every broken constraint. */
    readonly fields: FieldError[] | undefined;
    /** The answer's `Retry-After`, in ms (429 and 503 answers). */
    readonly retryAfterMs: number | undefined;
    constructor(body: KvErrorBody, status: number, options?: {
        retryAfterMs?: number | undefined;
        cause?: unknown;
    });
    /** The error of an answer that is not 2xx. */
    static fromResponse(response: Response): Promise<KvError>;
    /** A request that got no answer (the server is down, the network failed). */
    static unreachable(cause: unknown): KvError;
}
/** Whether `error` is a KvError with this code (or any code). */
export declare function isKvError(error: unknown, code?: ErrorCode): error is KvError;
