// Starts the Rust test server (examples/ts_test_server.rs), whose binary
// scripts/ts-test.sh builds and names in KV_TS_TEST_SERVER.

import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const binary =
  process.env.KV_TS_TEST_SERVER ??
  fileURLToPath(new URL("../../../../target/debug/examples/ts_test_server", import.meta.url));

export interface TestServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Stops it (SIGTERM: its streams end, as on a deploy) and waits for the exit. */
  stop(): Promise<void>;
}

/** Starts the server on `port` (0: a free one) over the store `store`. */
export async function startServer(store: string, port = 0): Promise<TestServer> {
  const child = spawn(binary, [String(port), store], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${binary} did not listen within 30 s`)), 30_000);
    const lines = createInterface({ input: child.stdout! });
    function fail(error: Error) {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(error);
    }
    child.once("error", (e) => fail(new Error(`cannot start ${binary} (set KV_TS_TEST_SERVER): ${e.message}`)));
    const early = (code: number | null) => fail(new Error(`${binary} exited (${code}) before listening`));
    child.once("exit", early);
    lines.on("line", (line) => {
      const found = /^listening on (http:\/\/\S+)$/.exec(line);
      if (found?.[1]) {
        clearTimeout(timer);
        child.off("exit", early);
        resolve(found[1]);
      }
    });
  });
  return { url, port: Number(new URL(url).port), stop: () => stop(child, exited) };
}

async function stop(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(timer);
}

/** Waits until `check` returns true, for at most `ms`. */
export async function until(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
