// A fake kv router behind a fake fetch, for the hook's tests: one key's
// row, event streams that can be fed and watched for closing, PUT with
// If-Match / If-None-Match conflicts, DELETE and restore. The real wire is
// covered by client.test.ts.

import type { SiteBanner, SiteBannerRow } from "./bindings/tables.js";

export class FakeRouter {
  row: SiteBannerRow | null = null;
  deleted: SiteBannerRow | null = null;
  /** Open event streams. */
  readonly streams = new Set<ReadableStreamDefaultController<Uint8Array>>();
  /** Every request, as `METHOD path`. */
  readonly requests: string[] = [];
  private clock = 1_000;

  readonly fetch = async (input: string, init: RequestInit): Promise<Response> => {
    const method = init.method ?? "GET";
    const path = new URL(input, "http://localhost").pathname;
    this.requests.push(`${method} ${path}`);
    const headers = new Headers(init.headers);
    if (path.endsWith("/events")) return this.stream(init.signal ?? undefined);
    if (method === "GET") return json(200, this.row);
    if (method === "PUT") {
      const ifMatch = headers.get("If-Match");
      const current = this.row?.updated_at ?? null;
      if ((ifMatch && ifMatch !== `"${current}"`) || (headers.get("If-None-Match") === "*" && current !== null)) {
        return json(409, { code: "CONFLICT", message: "the row changed", current_updated_at: current });
      }
      const { value } = JSON.parse(String(init.body)) as { value: SiteBanner };
      return json(200, this.write(value));
    }
    if (method === "DELETE") {
      const deleted = this.row !== null;
      this.deleted = this.row;
      this.publish(null);
      return json(200, { deleted });
    }
    if (method === "POST" && path.endsWith("/restore")) {
      if (!this.deleted) return json(404, { code: "NOT_FOUND", message: "no row" });
      this.publish({ ...this.deleted, updated_at: this.tick() });
      return json(200, this.row);
    }
    return json(404, { code: "NO_ROUTE", message: "no such route" });
  };

  /** A write made by someone else: the new row, sent to every stream. */
  write(value: SiteBanner): SiteBannerRow {
    const now = this.tick();
    this.publish({ key: "banner", value, created_at: this.row?.created_at ?? now, updated_at: now, updated_by: "grace" });
    return this.row as SiteBannerRow;
  }

  private publish(row: SiteBannerRow | null) {
    this.row = row;
    for (const stream of this.streams) send(stream, row);
  }

  private tick() {
    this.clock += 1;
    return this.clock;
  }

  private stream(signal: AbortSignal | undefined): Response {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({
      start: (c) => {
        controller = c;
        this.streams.add(c);
        c.enqueue(new TextEncoder().encode("retry: 1000\n\n"));
        send(c, this.row);
      },
      cancel: () => {
        this.streams.delete(controller);
      },
    });
    signal?.addEventListener("abort", () => {
      if (this.streams.delete(controller)) controller.error(signal.reason);
    });
    return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
  }
}

function send(stream: ReadableStreamDefaultController<Uint8Array>, row: SiteBannerRow | null) {
  stream.enqueue(new TextEncoder().encode(`data: ${JSON.stringify(row)}\n\n`));
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}
