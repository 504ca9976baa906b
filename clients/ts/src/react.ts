// `useKv`: a key's row in a React component, live over the event stream.
// React is a peer dependency of this entry point only.

import { useCallback, useEffect, useRef, useState } from "react";

import type { KvClient, KvClientBase, KvClientRestore, KvTable } from "./client.js";
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

interface State<R> {
  data: R | null;
  error: KvError | null;
  loading: boolean;
  status: WatchStatus;
}

const START = { data: null, error: null, loading: true, status: "connecting" } as const;

/**
 * The row of `key`, loaded and then kept current over the key's event
 * stream (reconnecting by itself), with the calls that change it. The
 * stream closes when the component unmounts or `client` or `key` change:
 * create the client once (at module level, or with `useMemo`), not on
 * every render.
 */
export function useKv<T extends KvTable>(client: KvClient<T>, key: T["key"]): UseKv<T> {
  type Row = T["row"];
  const [state, setState] = useState<State<Row>>(START);
  const live = useRef(true);

  useEffect(() => {
    live.current = true;
    setState(START);
    const watch = client.watch(
      key,
      ({ row }) => setState((s) => ({ ...s, data: row, error: null, loading: false })),
      {
        onError: (error) => setState((s) => ({ ...s, error })),
        onStatus: (status) => setState((s) => ({ ...s, status })),
      },
    );
    return () => {
      live.current = false;
      watch.close();
    };
  }, [client, key]);

  // Calls put their row (or error) in the state at once; the stream
  // confirms it.
  const run = useCallback(
    async <R>(call: () => Promise<R>, row: (result: R) => Row | null | undefined): Promise<R> => {
      try {
        const result = await call();
        const next = row(result);
        if (live.current) {
          setState((s) => ({ ...s, data: next === undefined ? s.data : next, error: null }));
        }
        return result;
      } catch (error) {
        if (live.current && error instanceof KvError) setState((s) => ({ ...s, error }));
        throw error;
      }
    },
    [],
  );

  const base = client as KvClientBase<T>;
  const update = useCallback(
    (value: T["value"], options: UpdateOptions = {}) => {
      const expected = options.expectedUpdatedAt;
      return run(
        () =>
          expected === undefined
            ? base.set(key, value)
            : expected === null
              ? base.setIfAbsent(key, value)
              : base.setExpecting(key, value, expected),
        (row) => row,
      );
    },
    [base, key, run],
  );
  const remove = useCallback(
    () => run(() => base.rm(key), (deleted) => (deleted ? null : undefined)),
    [base, key, run],
  );
  const restore = useCallback(
    () => run(() => (client as unknown as KvClientRestore<T>).restore(key), (row) => row),
    [client, key, run],
  );

  const result: UseKvBase<T> & UseKvRestore<T> = { ...state, update, remove, restore };
  return result as UseKv<T>;
}
