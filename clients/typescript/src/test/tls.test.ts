// The tls option: papayd serving gRPC over TLS with a certificate of a CA
// the client is given (openssl makes it: .ci/run installs it if missing).

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

import { createPapaydClient, PapaydError } from "../index.js";
import { papaydBin, startPapayd, tempDir } from "./papayd.js";
import type { Papayd } from "./papayd.js";

const run = promisify(execFile);

describe("papayd client over TLS", () => {
  let papayd: Papayd;
  let removeDir: () => Promise<void>;
  let ca = "";

  before(async () => {
    let dir: string;
    [dir, removeDir] = await tempDir("papayd-ts-tls-");
    // A self-signed certificate for 127.0.0.1: its own CA.
    await run("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", `${dir}/key.pem`, "-out", `${dir}/cert.pem`, "-days", "1",
      "-subj", "/CN=papayd-ts-test", "-addext", "subjectAltName=IP:127.0.0.1",
    ]);
    ca = await readFile(`${dir}/cert.pem`, "utf8");
    const bin = papaydBin;
    papayd = await startPapayd(bin, {
      dataDir: `${dir}/data`,
      tlsCa: ca,
      env: {
        PAPAYD_TLS_CERT_FILE: `${dir}/cert.pem`,
        PAPAYD_TLS_KEY_FILE: `${dir}/key.pem`,
        // Sandbox mode over TLS: the simulator calls back over plain HTTP.
        PAPAYD_NOTIFY_ADDR: "127.0.0.1:0",
      },
    });
  });

  after(async () => {
    await papayd?.stop();
    await removeDir?.();
  });

  it("calls papayd with the CA given in tls.ca", async () => {
    assert.match(papayd.grpcUrl, /^https:/);
    const client = createPapaydClient({ baseUrl: papayd.grpcUrl, tls: { ca } });
    try {
      const res = await client.agreements.listAgreements({});
      assert.deepEqual(res.agreements, []);
    } finally {
      client.close();
    }
  });

  it("refuses papayd's certificate without it", async () => {
    const client = createPapaydClient({ baseUrl: papayd.grpcUrl });
    try {
      await assert.rejects(client.agreements.listAgreements({}), (err: unknown) => {
        assert.ok(err instanceof PapaydError);
        // Node's verification error, not an answer of papayd's.
        assert.match(err.message, /self[- ]signed certificate/i);
        assert.equal(err.reason, "");
        return true;
      });
    } finally {
      client.close();
    }
  });

  it("refuses tls with an http:// baseUrl", () => {
    assert.throws(() => createPapaydClient({ baseUrl: "http://127.0.0.1:9090", tls: { ca } }), /tls needs an https/);
  });
});
