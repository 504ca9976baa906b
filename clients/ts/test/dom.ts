// A DOM for React Testing Library under node's test runner: jsdom's
// window, its globals where node has none (node keeps its own fetch,
// Response, streams and timers), and React's act() environment.

import { JSDOM } from "jsdom";

const dom = new JSDOM("<!doctype html><html><body></body></html>", { url: "http://localhost/" });
const global = globalThis as Record<string, unknown>;
const window = dom.window as unknown as Record<string, unknown>;
for (const name of Object.getOwnPropertyNames(window)) {
  if (!(name in global)) global[name] = window[name];
}
global.window = dom.window;
global.IS_REACT_ACT_ENVIRONMENT = true;
