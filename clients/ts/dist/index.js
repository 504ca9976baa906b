// kv's TypeScript client: the routes of a table's router, typed by the
// bindings kv generates from the Rust schema (`kv_runtime::ts`), so that
// a misspelled key is a compile error in the browser too.
export { createKvClient, } from "./client.js";
export { isKvError, KvError } from "./errors.js";
