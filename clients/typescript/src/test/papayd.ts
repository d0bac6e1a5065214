// A real papayd for the tests: built from this repository with go build and
// run in sandbox mode on free loopback ports, with its own data directory.

import { execFile, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";

const run = promisify(execFile);

/** The repository root: clients/typescript/dist/test -> ../../../.. */
export const repoRoot = resolve(fileURLToPath(import.meta.url), "../../../../..");

/** Where build.ts puts papayd for the tests (npm test runs it first). */
export const papaydBin = resolve(repoRoot, "clients/typescript/dist/papayd");

/** buildPapayd runs go build ./cmd/papayd from the repository root into papaydBin. */
export async function buildPapayd(): Promise<string> {
  await run("go", ["build", "-o", papaydBin, "./cmd/papayd"], { cwd: repoRoot, maxBuffer: 16 << 20 });
  return papaydBin;
}

export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr !== null ? ok(addr.port) : fail(new Error("no port"))));
    });
  });
}

export interface Papayd {
  grpcUrl: string;
  httpUrl: string;
  dataDir: string;
  /** What papayd wrote to stdout and stderr so far. */
  log(): string;
  /** SIGTERM, then waits for the exit (papayd shuts down gracefully). */
  stop(): Promise<void>;
}

export interface StartOptions {
  dataDir: string;
  env?: Record<string, string>;
  /** Reuse these ports (a restart); free ones otherwise. */
  grpcPort?: number;
  httpPort?: number;
  /** PEM of the CA that signed PAPAYD_TLS_CERT_FILE: /healthz is then asked over https. */
  tlsCa?: string;
}

/** healthz answers the status of GET /healthz. */
function healthz(url: string, ca?: string): Promise<number> {
  if (ca === undefined) {
    return fetch(`${url}/healthz`).then((res) => res.status);
  }
  return new Promise((ok, fail) => {
    const req = request(`${url}/healthz`, { ca }, (res) => {
      res.resume();
      ok(res.statusCode ?? 0);
    });
    req.on("error", fail);
    req.end();
  });
}

/** startPapayd starts bin in sandbox mode and waits until /healthz answers 200. */
export async function startPapayd(bin: string, opts: StartOptions): Promise<Papayd> {
  const grpcPort = opts.grpcPort ?? (await freePort());
  const httpPort = opts.httpPort ?? (await freePort());
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TMPDIR: process.env.TMPDIR,
    PAPAYD_GRPC_ADDR: `127.0.0.1:${grpcPort}`,
    PAPAYD_HTTP_ADDR: `127.0.0.1:${httpPort}`,
    PAPAYD_DATA_DIR: opts.dataDir,
    PAPAYD_SANDBOX_TIME_SCALE: "0.0001",
    ...opts.env,
  };
  const child: ChildProcess = spawn(bin, ["-admin-addr", ""], { env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (b: Buffer) => (output += b.toString()));
  child.stderr?.on("data", (b: Buffer) => (output += b.toString()));
  const exited = new Promise<void>((ok) => child.once("exit", () => ok()));
  let gone = false;
  void exited.then(() => (gone = true));

  const scheme = opts.tlsCa === undefined ? "http" : "https";
  const httpUrl = `${scheme}://127.0.0.1:${httpPort}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (gone) {
      throw new Error(`papayd exited before /healthz answered:\n${output}`);
    }
    try {
      if ((await healthz(httpUrl, opts.tlsCa)) === 200) {
        break;
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`papayd: no /healthz within 30 s:\n${output}`);
    }
    await new Promise((ok) => setTimeout(ok, 50));
  }
  return {
    grpcUrl: `${scheme}://127.0.0.1:${grpcPort}`,
    httpUrl,
    dataDir: opts.dataDir,
    log: () => output,
    stop: async () => {
      if (!gone) {
        child.kill("SIGTERM");
        await exited;
      }
    },
  };
}

/** tempDir makes a directory removed by the returned function. */
export async function tempDir(prefix: string): Promise<[string, () => Promise<void>]> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return [dir, () => rm(dir, { recursive: true, force: true })];
}

/** sandbox POSTs to the sandbox control API and answers the JSON body. */
export async function sandbox(httpUrl: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${httpUrl}/sandbox/v1/${path}`, {
    method: "POST",
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 200) {
    throw new Error(`sandbox ${path}: ${res.status} ${text}`);
  }
  return JSON.parse(text);
}

/** eventually retries check until it answers a value other than undefined. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) {
      return v;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((ok) => setTimeout(ok, 50));
  }
}
