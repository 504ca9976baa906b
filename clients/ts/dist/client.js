// `createKvClient`: the routes of one table's router, typed by the table's
// generated bindings (`createKvClient<SiteBannerTable>(...)`).
import { KvError } from "./errors.js";
import { startWatch } from "./watch.js";
/**
 * A client of the router mounted at `baseUrl` (`"/api/kv/site"`, or an
 * absolute URL), typed by the table's generated bindings:
 * `createKvClient<SiteBannerTable>("/api/kv/site")`.
 */
export function createKvClient(baseUrl, options = {}) {
    const base = baseUrl.replace(/\/+$/, "");
    const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
    const credentials = options.credentials ?? "same-origin";
    const url = (key, suffix = "") => `${base}/${encodeURIComponent(key)}${suffix}`;
    const headersFor = async (accept, extra) => {
        const given = typeof options.headers === "function" ? await options.headers() : options.headers;
        const headers = new Headers(given);
        headers.set("Accept", accept);
        for (const [name, value] of Object.entries(extra ?? {}))
            headers.set(name, value);
        return headers;
    };
    const call = async (method, target, call, body, extra) => {
        const headers = await headersFor("application/json", extra);
        const init = { method, headers, credentials };
        if (body !== undefined) {
            headers.set("Content-Type", "application/json");
            init.body = JSON.stringify(body);
        }
        if (call?.signal)
            init.signal = call.signal;
        let response;
        try {
            response = await doFetch(target, init);
        }
        catch (cause) {
            if (call?.signal?.aborted)
                throw cause;
            throw KvError.unreachable(cause);
        }
        if (!response.ok)
            throw await KvError.fromResponse(response);
        try {
            return (await response.json());
        }
        catch (cause) {
            if (call?.signal?.aborted)
                throw cause;
            throw new KvError({ code: "BACKEND", message: "the answer is not JSON" }, response.status, { cause });
        }
    };
    /** `target` with the page's query. */
    const paged = (target, page) => {
        const query = new URLSearchParams();
        if (page.cursor != null)
            query.set("cursor", page.cursor);
        if (page.limit !== undefined)
            query.set("limit", String(page.limit));
        const search = query.toString();
        return search ? `${target}?${search}` : target;
    };
    const client = {
        baseUrl: base,
        get: (key, opts) => call("GET", url(key), opts),
        list: (page = {}, opts) => call("GET", paged(base, page), opts),
        set: (key, value, opts) => call("PUT", url(key), opts, { value }),
        setExpecting: (key, value, expected, opts) => call("PUT", url(key), opts, { value }, { "If-Match": `"${expected}"` }),
        setIfAbsent: (key, value, opts) => call("PUT", url(key), opts, { value }, { "If-None-Match": "*" }),
        rm: async (key, opts) => (await call("DELETE", url(key), opts)).deleted,
        restore: (key, opts) => call("POST", url(key, "/restore"), opts),
        history: (key, page = {}, opts) => call("GET", paged(url(key, "/history"), page), opts),
        revert: (key, version, opts) => call("POST", url(key, "/revert"), opts, { version }, opts?.expectedUpdatedAt === undefined ? undefined : { "If-Match": `"${opts.expectedUpdatedAt}"` }),
        watch: (key, onState, watchOptions) => startWatch(async (signal) => doFetch(url(key, "/events"), {
            method: "GET",
            headers: await headersFor("text/event-stream"),
            credentials,
            cache: "no-store",
            signal,
        }), onState, watchOptions),
    };
    return client;
}
