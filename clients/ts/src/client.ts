// `createKvClient`: the routes of one table's router, typed by the table's
// generated bindings (`createKvClient<SiteBannerTable>(...)`).

import { KvError } from "./errors.js";
import { startWatch, type Watch, type WatchOptions, type WatchState } from "./watch.js";

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
  unreadable?: { version: number; op: HistoryOp; schema_version: number; reason: string }[];
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
export type KvClient<T extends KvTable> = KvClientBase<T> &
  (T["softDelete"] extends true ? KvClientRestore<T> : unknown) &
  (T["history"] extends true ? KvClientHistory<T> : unknown);

/**
 * A client of the router mounted at `baseUrl` (`"/api/kv/site"`, or an
 * absolute URL), typed by the table's generated bindings:
 * `createKvClient<SiteBannerTable>("/api/kv/site")`.
 */
export function createKvClient<T extends KvTable>(baseUrl: string, options: KvClientOptions = {}): KvClient<T> {
  const base = baseUrl.replace(/\/+$/, "");
  const doFetch = options.fetch ?? ((input: string, init: RequestInit) => fetch(input, init));
  const credentials = options.credentials ?? "same-origin";
  const url = (key: string, suffix = "") => `${base}/${encodeURIComponent(key)}${suffix}`;

  const headersFor = async (accept: string, extra?: Record<string, string>): Promise<Headers> => {
    const given = typeof options.headers === "function" ? await options.headers() : options.headers;
    const headers = new Headers(given);
    headers.set("Accept", accept);
    for (const [name, value] of Object.entries(extra ?? {})) headers.set(name, value);
    return headers;
  };

  const call = async <R>(
    method: string,
    target: string,
    call: CallOptions | undefined,
    body?: unknown,
    extra?: Record<string, string>,
  ): Promise<R> => {
    const headers = await headersFor("application/json", extra);
    const init: RequestInit = { method, headers, credentials };
    if (body !== undefined) {
      headers.set("Content-Type", "application/json");
      init.body = JSON.stringify(body);
    }
    if (call?.signal) init.signal = call.signal;
    let response: Response;
    try {
      response = await doFetch(target, init);
    } catch (cause) {
      if (call?.signal?.aborted) throw cause;
      throw KvError.unreachable(cause);
    }
    if (!response.ok) throw await KvError.fromResponse(response);
    try {
      return (await response.json()) as R;
    } catch (cause) {
      if (call?.signal?.aborted) throw cause;
      throw new KvError({ code: "BACKEND", message: "the answer is not JSON" }, response.status, { cause });
    }
  };

  /** `target` with the page's query. */
  const paged = (target: string, page: PageRequest) => {
    const query = new URLSearchParams();
    if (page.cursor != null) query.set("cursor", page.cursor);
    if (page.limit !== undefined) query.set("limit", String(page.limit));
    const search = query.toString();
    return search ? `${target}?${search}` : target;
  };

  type Row = T["row"];
  type Entry = KvHistoryEntry<T["key"], T["value"]>;
  const client: KvClientBase<T> & KvClientRestore<T> & KvClientHistory<T> = {
    baseUrl: base,
    get: (key, opts) => call<Row | null>("GET", url(key), opts),
    list: (page = {}, opts) => call<Page<Row>>("GET", paged(base, page), opts),
    set: (key, value, opts) => call<Row>("PUT", url(key), opts, { value }),
    setExpecting: (key, value, expected, opts) =>
      call<Row>("PUT", url(key), opts, { value }, { "If-Match": `"${expected}"` }),
    setIfAbsent: (key, value, opts) => call<Row>("PUT", url(key), opts, { value }, { "If-None-Match": "*" }),
    rm: async (key, opts) => (await call<{ deleted: boolean }>("DELETE", url(key), opts)).deleted,
    restore: (key, opts) => call<Row>("POST", url(key, "/restore"), opts),
    history: (key, page = {}, opts) => call<HistoryPage<Entry>>("GET", paged(url(key, "/history"), page), opts),
    revert: (key, version, opts) =>
      call<Row>(
        "POST",
        url(key, "/revert"),
        opts,
        { version },
        opts?.expectedUpdatedAt === undefined ? undefined : { "If-Match": `"${opts.expectedUpdatedAt}"` },
      ),
    watch: (key, onState, watchOptions) =>
      startWatch<Row>(
        async (signal) =>
          doFetch(url(key, "/events"), {
            method: "GET",
            headers: await headersFor("text/event-stream"),
            credentials,
            cache: "no-store",
            signal,
          }),
        onState,
        watchOptions,
      ),
  };
  return client as KvClient<T>;
}
