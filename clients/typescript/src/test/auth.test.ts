// The bearer key: a papayd with PAPAYD_AUTH=keys refuses a call without it,
// or with another key, and answers the client given the key.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

import { Code } from "@connectrpc/connect";

import { createPapaydClient, PapaydError } from "../index.js";
import { papaydBin, startPapayd, tempDir } from "./papayd.js";
import type { Papayd } from "./papayd.js";

const run = promisify(execFile);

describe("papayd client with PAPAYD_AUTH=keys", () => {
  let papayd: Papayd;
  let removeDir: () => Promise<void>;
  let apiKey = "";

  before(async () => {
    let dir: string;
    [dir, removeDir] = await tempDir("papayd-ts-auth-");
    const bin = papaydBin;
    const dataDir = `${dir}/data`;
    // README "API keys": papayd keys create prints "key: pk_..." once.
    const out = await run(bin, ["keys", "create", "--name", "ts-client", "--scopes", "agreements:read"], {
      env: { PATH: process.env.PATH, PAPAYD_DATA_DIR: dataDir },
    });
    apiKey = /^key: (pk_\S+)$/m.exec(out.stdout)?.[1] ?? "";
    assert.ok(apiKey, `no key in: ${out.stdout}`);
    papayd = await startPapayd(bin, { dataDir, env: { PAPAYD_AUTH: "keys" } });
  });

  after(async () => {
    await papayd?.stop();
    await removeDir?.();
  });

  async function listAgreements(apiKey?: string) {
    const client = createPapaydClient({ baseUrl: papayd.grpcUrl, apiKey });
    try {
      return await client.agreements.listAgreements({});
    } finally {
      client.close();
    }
  }

  it("sends the key as authorization: Bearer", async () => {
    const res = await listAgreements(apiKey);
    assert.deepEqual(res.agreements, []);
  });

  it("is UNAUTHENTICATED without a key or with an unknown one", async () => {
    for (const key of [undefined, apiKey.slice(0, -4) + "aaaa"]) {
      await assert.rejects(listAgreements(key), (err: unknown) => {
        assert.ok(err instanceof PapaydError);
        assert.equal(err.code, Code.Unauthenticated);
        return true;
      });
    }
  });

  it("is PERMISSION_DENIED for a call beyond the key's scopes", async () => {
    const client = createPapaydClient({ baseUrl: papayd.grpcUrl, apiKey });
    try {
      await assert.rejects(client.charges.listCharges({}), (err: unknown) => {
        assert.ok(err instanceof PapaydError);
        assert.equal(err.code, Code.PermissionDenied);
        return true;
      });
    } finally {
      client.close();
    }
  });
});
