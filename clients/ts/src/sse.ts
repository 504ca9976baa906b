// Server-sent events read from a fetch body, as the HTML standard parses
// them: `event`, `data` (lines joined with "\n"), `retry`; comments and
// `id` are ignored. Over fetch rather than EventSource, so that a refused
// stream's status and JSON error can be read, headers can be sent, and
// reconnection follows our own backoff.

/** One dispatched event. */
export interface SseEvent {
  /** The event type; `"message"` when the server named none. */
  type: string;
  data: string;
}

/** Parses a stream of bytes into events; `onRetry` gets each `retry:` field. */
export async function readEvents(
  body: ReadableStream<Uint8Array>,
  onEvent: (event: SseEvent) => void,
  onRetry: (ms: number) => void,
): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let type = "";
  let data: string[] = [];
  let first = true;

  const line = (text: string) => {
    if (text === "") {
      if (data.length > 0) onEvent({ type: type || "message", data: data.join("\n") });
      type = "";
      data = [];
      return;
    }
    if (text.startsWith(":")) return;
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") type = value;
    else if (field === "data") data.push(value);
    else if (field === "retry" && /^\d+$/.test(value)) onRetry(Number(value));
  };

  try {
    for (;;) {
      const { done, value } = await reader.read();
      buffer += decoder.decode(value, { stream: !done });
      if (first && buffer.length > 0) {
        if (buffer.charCodeAt(0) === 0xfeff) buffer = buffer.slice(1);
        first = false;
      }
      // A line ends at \r\n, \n or \r; a \r last in the buffer may be the
      // first half of \r\n, so it waits for more unless the stream is done.
      let start = 0;
      for (let i = 0; i < buffer.length; i++) {
        const c = buffer[i];
        if (c !== "\n" && c !== "\r") continue;
        if (c === "\r" && i + 1 === buffer.length && !done) break;
        line(buffer.slice(start, i));
        if (c === "\r" && buffer[i + 1] === "\n") i++;
        start = i + 1;
      }
      buffer = buffer.slice(start);
      if (done) return;
    }
  } finally {
    reader.releaseLock();
  }
}
