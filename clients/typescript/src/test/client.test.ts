// The client against a real papayd in sandbox mode: presign, sign through the
// sandbox, charge, refund, errors, the event stream and a signed webhook.

import assert from "node:assert/strict";
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import type { IncomingHttpHeaders, Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";

import { Code, ConnectError } from "@connectrpc/connect";
import type { Interceptor } from "@connectrpc/connect";

import {
  AgreementState,
  ChargeState,
  createPapaydClient,
  PapaydError,
  RefundState,
} from "../index.js";
import type { Event, PapaydClient, StreamEventsRequest } from "../index.js";
import { papaydBin, eventually, sandbox, startPapayd, tempDir } from "./papayd.js";
import type { Papayd } from "./papayd.js";

interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
}

/** verifyWebhook checks a Standard Webhooks signature as README "Webhooks" describes it. */
function verifyWebhook(secret: string, headers: IncomingHttpHeaders, body: string): boolean {
  assert.ok(secret.startsWith("whsec_"), `secret ${secret}`);
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  const id = String(headers["webhook-id"]);
  const timestamp = String(headers["webhook-timestamp"]);
  const want = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest();
  // The header holds space-separated "v1,<base64>" signatures.
  return String(headers["webhook-signature"])
    .split(" ")
    .some((sig) => {
      const [version, b64] = sig.split(",", 2);
      const got = Buffer.from(b64 ?? "", "base64");
      return version === "v1" && got.length === want.length && timingSafeEqual(got, want);
    });
}

async function rejection(p: Promise<unknown>): Promise<PapaydError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof PapaydError, `not a PapaydError: ${String(err)}`);
    assert.ok(err instanceof ConnectError);
    return err;
  }
  assert.fail("the call succeeded");
}

describe("papayd client (sandbox)", () => {
  let papayd: Papayd;
  let client: PapaydClient;
  let removeDir: () => Promise<void>;
  let hookServer: Server;
  const deliveries: Delivery[] = [];

  // Every StreamEvents request's after_sequence, as sent; the first stream
  // fails with UNAVAILABLE after two events (the client cancels it).
  const streamRequests: bigint[] = [];
  let faultInjected = false;
  const faults: Interceptor = (next) => async (req) => {
    if (req.method.name !== "StreamEvents" || !req.stream) {
      return next(req);
    }
    const input = req.message;
    const res = await next({
      ...req,
      message: (async function* () {
        for await (const m of input) {
          streamRequests.push((m as StreamEventsRequest).afterSequence);
          yield m;
        }
      })(),
    });
    if (faultInjected || !res.stream) {
      return res;
    }
    faultInjected = true;
    const output = res.message;
    return {
      ...res,
      message: (async function* () {
        let n = 0;
        for await (const m of output) {
          yield m;
          if (++n === 2) {
            break;
          }
        }
        throw new ConnectError("injected by the test", Code.Unavailable);
      })(),
    };
  };

  // Filled by the stream consumer started before the first call.
  const streamed: Event[] = [];
  const reconnects: { err: PapaydError; afterSequence: bigint }[] = [];
  const stopStream = new AbortController();
  let streamDone: Promise<void>;

  let contractId = "";
  const outTradeNo = `TS-${Date.now()}`;

  before(async () => {
    let dir: string;
    [dir, removeDir] = await tempDir("papayd-ts-");
    const bin = papaydBin;
    papayd = await startPapayd(bin, { dataDir: `${dir}/data` });
    client = createPapaydClient({ baseUrl: papayd.grpcUrl, interceptors: [faults], defaultTimeoutMs: 20_000 });
    hookServer = createServer((req, res) => {
      let body = "";
      req.on("data", (b: Buffer) => (body += b.toString()));
      req.on("end", () => {
        deliveries.push({ headers: req.headers, body });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((ok) => hookServer.listen(0, "127.0.0.1", ok));
    streamDone = (async () => {
      for await (const ev of client.streamEvents(0n, {
        signal: stopStream.signal,
        minBackoffMs: 20,
        onReconnect: (err, afterSequence) => reconnects.push({ err, afterSequence }),
      })) {
        streamed.push(ev);
      }
    })();
  });

  after(async () => {
    stopStream.abort();
    await streamDone;
    client?.close();
    await new Promise((ok) => hookServer?.close(ok));
    await papayd?.stop();
    await removeDir?.();
  });

  let secret = "";
  it("creates a webhook endpoint (WebhookService)", async () => {
    const port = (hookServer.address() as AddressInfo).port;
    const res = await client.webhooks.createWebhookEndpoint({ url: `http://127.0.0.1:${port}/hook` });
    assert.match(res.endpoint?.id ?? "", /^we_/);
    assert.match(res.secret, /^whsec_/);
    secret = res.secret;
  });

  it("presigns (AgreementService) and signs through the sandbox", async () => {
    const presign = await client.agreements.createPresignSession({
      planId: 4001n,
      openid: "oUserTs",
      userDisplayName: "Chan Tai Man",
    });
    assert.equal(presign.agreement?.state, AgreementState.PENDING);
    assert.notEqual(presign.sessionId, "");
    const signed = await sandbox(papayd.httpUrl, `sessions/${presign.sessionId}:sign`);
    contractId = signed.contract_id;
    assert.ok(contractId, JSON.stringify(signed));
    const agreement = await eventually("agreement SIGNED", async () => {
      // NOT_FOUND until papayd has applied the sandbox's PAPAY.SIGN.
      const res = await client.agreements.getAgreement({ contractId }).catch((err: unknown) => {
        if (err instanceof PapaydError && err.code === Code.NotFound) {
          return undefined;
        }
        throw err;
      });
      return res?.agreement?.state === AgreementState.SIGNED ? res.agreement : undefined;
    });
    assert.equal(agreement.outContractCode, presign.agreement?.outContractCode);
  });

  it("charges (ChargeService.CreateCharge)", async () => {
    const res = await client.charges.createCharge({
      outTradeNo,
      contractId,
      amount: { total: 8800n, currency: "HKD" },
      description: "FitClub-Central-Monthly",
    });
    assert.equal(res.charge?.state, ChargeState.SUCCEEDED);
    assert.equal(res.charge?.amount?.total, 8800n);
    assert.notEqual(res.charge?.transactionId, "");
  });

  it("refuses an empty out_trade_no: INVALID_ARGUMENT with its field violation", async () => {
    const err = await rejection(
      client.charges.createCharge({
        outTradeNo: "",
        contractId,
        amount: { total: 100n, currency: "HKD" },
        description: "x",
      }),
    );
    assert.equal(err.code, Code.InvalidArgument);
    assert.equal(err.codeName, "INVALID_ARGUMENT");
    assert.equal(err.reason, "INVALID_ARGUMENT");
    assert.deepEqual(
      err.fieldViolations.map((v) => v.field),
      ["out_trade_no"],
    );
    assert.notEqual(err.fieldViolations[0]?.description, "");
  });

  it("refunds (RefundService) and refuses an over-refund with REFUND_EXCEEDS_CHARGE", async () => {
    const created = await client.refunds.createRefund({
      outRefundNo: `${outTradeNo}-R1`,
      outTradeNo,
      amount: { refund: 2000n, currency: "HKD" },
      reason: "plan cancelled",
    });
    assert.equal(created.refund?.outTradeNo, outTradeNo);
    await eventually("refund SUCCEEDED", async () => {
      const res = await client.refunds.getRefund({ outRefundNo: `${outTradeNo}-R1` });
      return res.refund?.state === RefundState.SUCCEEDED ? true : undefined;
    });
    const charge = await client.charges.getCharge({ outTradeNo });
    assert.equal(charge.charge?.refundedTotal, 2000n);

    const err = await rejection(
      client.refunds.createRefund({
        outRefundNo: `${outTradeNo}-R2`,
        outTradeNo,
        amount: { refund: 6801n, currency: "HKD" },
        reason: "too much",
      }),
    );
    assert.equal(err.code, Code.FailedPrecondition);
    assert.equal(err.reason, "REFUND_EXCEEDS_CHARGE");
    assert.deepEqual(err.fieldViolations, []);
  });

  it("streams events, reconnecting from the last sequence after an error", async () => {
    await eventually("refund.succeeded on the stream", async () =>
      streamed.some((e) => e.type === "refund.succeeded") ? true : undefined,
    );
    const types = streamed.map((e) => e.type);
    for (const t of ["agreement.created", "agreement.signed", "charge.succeeded", "refund.created", "refund.succeeded"]) {
      assert.ok(types.includes(t), `${t} not in ${types.join(", ")}`);
    }
    // The injected error: one reconnect, from the second event's sequence.
    assert.equal(reconnects.length, 1, JSON.stringify(reconnects.map((r) => r.err.message)));
    assert.equal(reconnects[0]?.err.code, Code.Unavailable);
    assert.equal(streamRequests.length, 2);
    assert.equal(streamRequests[0], 0n);
    assert.equal(streamRequests[1], streamed[1]?.sequence);
    // Nothing skipped, nothing twice: the same events as ListEvents.
    const listed = await client.events.listEvents({ afterSequence: 0n, pageSize: 500 });
    const upTo = streamed[streamed.length - 1]!.sequence;
    assert.deepEqual(
      streamed.map((e) => e.sequence),
      listed.events.filter((e) => e.sequence <= upTo).map((e) => e.sequence),
    );
  });

  it("receives signed webhooks (Standard Webhooks)", async () => {
    const refundHook = await eventually("the refund.succeeded webhook", async () =>
      deliveries.find((d) => JSON.parse(d.body).event?.type === "refund.succeeded"),
    );
    for (const d of deliveries) {
      assert.ok(verifyWebhook(secret, d.headers, d.body), `bad signature: ${JSON.stringify(d.headers)}`);
      assert.equal(JSON.parse(d.body).event.id, d.headers["webhook-id"]);
      const age = Math.abs(Date.now() / 1000 - Number(d.headers["webhook-timestamp"]));
      assert.ok(age < 300, `webhook-timestamp ${d.headers["webhook-timestamp"]}`);
    }
    // The check fails on a changed body or another secret.
    assert.equal(verifyWebhook(secret, refundHook.headers, refundHook.body + " "), false);
    assert.equal(verifyWebhook("whsec_" + Buffer.alloc(24).toString("base64"), refundHook.headers, refundHook.body), false);
  });
});
