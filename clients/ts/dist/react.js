// `useKv`: a key's row in a React component, live over the event stream.
// React is a peer dependency of this entry point only.
import { useCallback, useEffect, useRef, useState } from "react";
import { KvError } from "./errors.js";
const START = { data: null, error: null, loading: true, status: "connecting" };
/**
 * The row of `key`, loaded and then kept current over the key's event
 * stream (reconnecting by itself), with the calls that change it. The
 * stream closes when the component unmounts or `client` or `key` change:
 * create the client once (at module level, or with `useMemo`), not on
 * every render.
 */
export function useKv(client, key) {
    const [state, setState] = useState(START);
    const live = useRef(true);
    useEffect(() => {
        live.current = true;
        setState(START);
        const watch = client.watch(key, ({ row }) => setState((s) => ({ ...s, data: row, error: null, loading: false })), {
            onError: (error) => setState((s) => ({ ...s, error })),
            onStatus: (status) => setState((s) => ({ ...s, status })),
        });
        return () => {
            live.current = false;
            watch.close();
        };
    }, [client, key]);
    // Calls put their row (or error) in the state at once; the stream
    // confirms it.
    const run = useCallback(async (call, row) => {
        try {
            const result = await call();
            const next = row(result);
            if (live.current) {
                setState((s) => ({ ...s, data: next === undefined ? s.data : next, error: null }));
            }
            return result;
        }
        catch (error) {
            if (live.current && error instanceof KvError)
                setState((s) => ({ ...s, error }));
            throw error;
        }
    }, []);
    const base = client;
    const update = useCallback((value, options = {}) => {
        const expected = options.expectedUpdatedAt;
        return run(() => expected === undefined
            ? base.set(key, value)
            : expected === null
                ? base.setIfAbsent(key, value)
                : base.setExpecting(key, value, expected), (row) => row);
    }, [base, key, run]);
    const remove = useCallback(() => run(() => base.rm(key), (deleted) => (deleted ? null : undefined)), [base, key, run]);
    const restore = useCallback(() => run(() => client.restore(key), (row) => row), [client, key, run]);
    const result = { ...state, update, remove, restore };
    return result;
}
