// For the type check of the demo's scripts only (clients/ts/tsconfig.demo.json):
// they import "./kv/index.js", which the demo serves at /assets/kv/ from
// clients/ts/dist. This gives that import the client's types.
export * from "../../../clients/ts/dist/index.js";
