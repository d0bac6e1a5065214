// The event stream across a restart of papayd: its stream ends (UNAVAILABLE),
// the iterator reconnects to the new process from the last sequence it
// yielded, and sees the events committed after the restart.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { Code } from "@connectrpc/connect";
import type { Interceptor } from "@connectrpc/connect";

import { createPapaydClient } from "../index.js";
import type { Event, PapaydClient, PapaydError, StreamEventsRequest } from "../index.js";
import { papaydBin, eventually, startPapayd, tempDir } from "./papayd.js";
import type { Papayd } from "./papayd.js";

describe("event stream across a papayd restart", () => {
  let bin: string;
  let dataDir: string;
  let papayd: Papayd;
  let client: PapaydClient;
  let removeDir: () => Promise<void>;

  // Every StreamEvents request's after_sequence, as sent.
  const streamRequests: bigint[] = [];
  const record: Interceptor = (next) => async (req) => {
    if (req.method.name === "StreamEvents" && req.stream) {
      const input = req.message;
      return next({
        ...req,
        message: (async function* () {
          for await (const m of input) {
            streamRequests.push((m as StreamEventsRequest).afterSequence);
            yield m;
          }
        })(),
      });
    }
    return next(req);
  };

  before(async () => {
    let dir: string;
    [dir, removeDir] = await tempDir("papayd-ts-restart-");
    bin = papaydBin;
    dataDir = `${dir}/data`;
    papayd = await startPapayd(bin, { dataDir });
    client = createPapaydClient({ baseUrl: papayd.grpcUrl, interceptors: [record], defaultTimeoutMs: 20_000 });
  });

  after(async () => {
    client?.close();
    await papayd?.stop();
    await removeDir?.();
  });

  it("reconnects from the last sequence", async () => {
    const streamed: Event[] = [];
    const reconnects: PapaydError[] = [];
    const stop = new AbortController();
    const done = (async () => {
      for await (const ev of client.streamEvents(0n, {
        signal: stop.signal,
        minBackoffMs: 20,
        maxBackoffMs: 200,
        onReconnect: (err) => reconnects.push(err),
      })) {
        streamed.push(ev);
      }
    })();
    try {
      await client.agreements.createPresignSession({ planId: 4001n, openid: "oUserBefore" });
      await eventually("the first agreement.created", async () => (streamed.length === 1 ? true : undefined));

      const url = new URL(papayd.grpcUrl);
      const httpPort = Number(new URL(papayd.httpUrl).port);
      await papayd.stop();
      papayd = await startPapayd(bin, { dataDir, grpcPort: Number(url.port), httpPort });

      await client.agreements.createPresignSession({ planId: 4001n, openid: "oUserAfter" });
      await eventually("the second agreement.created", async () => (streamed.length === 2 ? true : undefined));
    } finally {
      stop.abort();
      await done;
    }
    assert.deepEqual(
      streamed.map((e) => [e.type, e.resource.case === "agreement" ? e.resource.value.openid : ""]),
      [
        ["agreement.created", "oUserBefore"],
        ["agreement.created", "oUserAfter"],
      ],
    );
    assert.ok(streamed[1]!.sequence > streamed[0]!.sequence);
    assert.ok(reconnects.length >= 1);
    assert.equal(reconnects[0]?.code, Code.Unavailable, reconnects[0]?.message);
    // Every request after the first resumed after the first event.
    assert.equal(streamRequests[0], 0n);
    assert.ok(streamRequests.length >= 2);
    for (const s of streamRequests.slice(1)) {
      assert.equal(s, streamed[0]!.sequence);
    }
  });

  it("keeps a stream open past defaultTimeoutMs", async () => {
    const short = createPapaydClient({ baseUrl: papayd.grpcUrl, defaultTimeoutMs: 200 });
    const streamed: Event[] = [];
    const reconnects: PapaydError[] = [];
    const stop = new AbortController();
    const last = (await short.events.listEvents({ afterSequence: 0n })).nextAfterSequence;
    const done = (async () => {
      for await (const ev of short.streamEvents(last, { signal: stop.signal, onReconnect: (err) => reconnects.push(err) })) {
        streamed.push(ev);
      }
    })();
    try {
      await new Promise((ok) => setTimeout(ok, 700));
      await short.agreements.createPresignSession({ planId: 4001n, openid: "oUserLater" });
      await eventually("agreement.created", async () => (streamed.length === 1 ? true : undefined));
    } finally {
      stop.abort();
      await done;
      short.close();
    }
    assert.deepEqual(reconnects, []);
  });
});
