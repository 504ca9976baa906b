/** One dispatched event. */
export interface SseEvent {
    /** The event type; `"message"` when the server named none. */
    type: string;
    data: string;
}
/** Parses a stream of bytes into events; `onRetry` gets each `retry:` field. */
export declare function readEvents(body: ReadableStream<Uint8Array>, onEvent: (event: SseEvent) => void, onRetry: (ms: number) => void): Promise<void>;
