// The counterpart of trybuild: each file in test-types/fail/ must fail
// `tsc --noEmit` with exactly the messages checked in beside it
// (`<name>.expected`), and test-types/pass/ must compile. KV_UPDATE_TS=1
// rewrites the expected messages.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const root = fileURLToPath(new URL("../../", import.meta.url));
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
const options = [
  "--ignoreConfig",
  "--noEmit",
  "--pretty",
  "false",
  "--strict",
  "--target",
  "es2022",
  "--module",
  "nodenext",
  "--moduleResolution",
  "nodenext",
  "--lib",
  "es2022,dom",
  "--types",
  "node",
  "--jsx",
  "react-jsx",
];

async function compile(files: string[]): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [tsc, ...options, ...files], { cwd: root });
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const { stdout = "", stderr = "" } = error as { stdout?: string; stderr?: string };
    return { ok: false, output: stdout + stderr };
  }
}

const fails = readdirSync(join(root, "test-types", "fail")).filter((f) => f.endsWith(".ts"));

for (const file of fails) {
  test(`test-types/fail/${file} does not compile`, async () => {
    const path = `test-types/fail/${file}`;
    const { ok, output } = await compile([path]);
    assert.equal(ok, false, `${path} compiled`);
    const expectedPath = join(root, path.replace(/\.ts$/, ".expected"));
    if (process.env.KV_UPDATE_TS === "1") writeFileSync(expectedPath, output);
    assert.ok(existsSync(expectedPath), `${expectedPath} is missing: run with KV_UPDATE_TS=1 to write it`);
    assert.equal(output, readFileSync(expectedPath, "utf8"), `${path}: run with KV_UPDATE_TS=1 to accept the new messages`);
  });
}

test("test-types/pass compiles", async () => {
  const files = readdirSync(join(root, "test-types", "pass")).map((f) => `test-types/pass/${f}`);
  const { ok, output } = await compile(files);
  assert.equal(output, "");
  assert.ok(ok);
});
