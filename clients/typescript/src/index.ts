// @papayd/client: papayd's gRPC API for Node, on Connect-ES's gRPC transport
// (HTTP/2: h2c for http:// base URLs, TLS for https://).

import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { Client, Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import type * as http2 from "node:http2";

import { AgreementService } from "./gen/papay/v1/agreement_pb.js";
import { AuditService } from "./gen/papay/v1/audit_pb.js";
import { ChargeService } from "./gen/papay/v1/charge_pb.js";
import { EventService } from "./gen/papay/v1/event_pb.js";
import type { Event } from "./gen/papay/v1/event_pb.js";
import { RefundService } from "./gen/papay/v1/refund_pb.js";
import { WebhookService } from "./gen/papay/v1/webhook_pb.js";
import { PapaydError, toPapaydError } from "./errors.js";

export * from "./errors.js";
export * from "./gen/papay/v1/agreement_pb.js";
export * from "./gen/papay/v1/audit_pb.js";
export * from "./gen/papay/v1/charge_pb.js";
export * from "./gen/papay/v1/event_pb.js";
export * from "./gen/papay/v1/refresh_pb.js";
export * from "./gen/papay/v1/refund_pb.js";
export * from "./gen/papay/v1/webhook_pb.js";

/** TLS settings of an https:// base URL (Node's tls options of the same names). */
export interface PapaydTlsOptions {
  /** CA certificates (PEM) to trust instead of Node's defaults. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Client certificate chain and key (PEM), for papayd's mTLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Server name to verify, when it differs from the base URL's host. */
  servername?: string;
}

export interface PapaydClientOptions {
  /** papayd's gRPC address: "http://127.0.0.1:9090" (plaintext h2c) or "https://papayd.internal:9090". */
  baseUrl: string;
  /** An API key, pk_..., sent as "authorization: Bearer <key>" on every call. */
  apiKey?: string;
  /** TLS settings; only with an https:// base URL. */
  tls?: PapaydTlsOptions;
  /** Run before the client's own (the bearer key, then error conversion). */
  interceptors?: Interceptor[];
  /** Deadline of each call in milliseconds unless the call gives its own (streamEvents has none); none by default. */
  defaultTimeoutMs?: number;
}

export interface StreamEventsOptions {
  /** Only these event types (e.g. "charge.succeeded"); all when empty. */
  types?: string[];
  /** Only this sub-merchant's events. */
  subMchid?: string;
  /** Ends the iteration (without an error) when aborted. */
  signal?: AbortSignal;
  /** First delay before a reconnect, doubled after each failed attempt; default 100 ms. */
  minBackoffMs?: number;
  /** Largest delay before a reconnect; default 5000 ms. */
  maxBackoffMs?: number;
  /** Told of each stream error that is followed by a reconnect. */
  onReconnect?: (err: PapaydError, afterSequence: bigint, delayMs: number) => void;
}

export interface PapaydClient {
  agreements: Client<typeof AgreementService>;
  charges: Client<typeof ChargeService>;
  refunds: Client<typeof RefundService>;
  events: Client<typeof EventService>;
  webhooks: Client<typeof WebhookService>;
  audit: Client<typeof AuditService>;
  /**
   * The events after afterSequence, then each one as it commits, for as long
   * as the caller iterates. After a stream error it reconnects, after a
   * backoff, from the last sequence it yielded, so no event is skipped or
   * repeated. Errors a reconnect cannot cure (see isPermanent) end it by
   * throwing a PapaydError; breaking out of the loop or aborting
   * options.signal ends it quietly.
   */
  streamEvents(afterSequence: bigint, options?: StreamEventsOptions): AsyncGenerator<Event, void, undefined>;
  /** Closes the HTTP/2 connection; calls under way fail. */
  close(): void;
}

/** bearer adds "authorization: Bearer <key>" to every call. */
function bearer(apiKey: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${apiKey}`);
    return next(req);
  };
}

/** papaydErrors turns every ConnectError of a call, a stream's included, into a PapaydError. */
const papaydErrors: Interceptor = (next) => async (req) => {
  let res;
  try {
    res = await next(req);
  } catch (err) {
    throw toPapaydError(err);
  }
  if (!res.stream) {
    return res;
  }
  const messages = res.message;
  return {
    ...res,
    message: (async function* () {
      try {
        yield* messages;
      } catch (err) {
        throw toPapaydError(err);
      }
    })(),
  };
};

/**
 * isPermanent: errors after which StreamEvents would fail the same way again
 * (a bad request or key, a cursor older than the oldest event kept). Others,
 * UNAVAILABLE (a papayd shutting down, a lost connection) among them, are
 * retried.
 */
export function isPermanent(err: PapaydError): boolean {
  switch (err.code) {
    case Code.InvalidArgument:
    case Code.OutOfRange:
    case Code.Unauthenticated:
    case Code.PermissionDenied:
    case Code.NotFound:
    case Code.Unimplemented:
    case Code.FailedPrecondition:
      return true;
    default:
      return false;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

export function createPapaydClient(options: PapaydClientOptions): PapaydClient {
  const url = new URL(options.baseUrl);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`papayd client: baseUrl must be http:// or https://, not ${url.protocol}`);
  }
  if (options.tls !== undefined && url.protocol !== "https:") {
    throw new Error("papayd client: tls needs an https:// baseUrl");
  }
  const nodeOptions: http2.SecureClientSessionOptions = { ...options.tls };
  const sessionManager = new Http2SessionManager(url, {}, nodeOptions);
  const interceptors = [...(options.interceptors ?? [])];
  if (options.apiKey !== undefined) {
    interceptors.push(bearer(options.apiKey));
  }
  interceptors.push(papaydErrors);
  const transport = createGrpcTransport({
    baseUrl: options.baseUrl,
    sessionManager,
    interceptors,
    defaultTimeoutMs: options.defaultTimeoutMs,
  });
  const events = createClient(EventService, transport);

  async function* streamEvents(
    afterSequence: bigint,
    opts: StreamEventsOptions = {},
  ): AsyncGenerator<Event, void, undefined> {
    const minBackoff = opts.minBackoffMs ?? 100;
    const maxBackoff = opts.maxBackoffMs ?? 5000;
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    opts.signal?.addEventListener("abort", onAbort);
    if (opts.signal?.aborted) {
      stop.abort();
    }
    let last = afterSequence;
    let failures = 0;
    try {
      while (!stop.signal.aborted) {
        try {
          const stream = events.streamEvents(
            { afterSequence: last, types: opts.types ?? [], subMchid: opts.subMchid ?? "" },
            // No deadline: the stream lasts as long as the caller iterates
            // (defaultTimeoutMs is for the other calls).
            { signal: stop.signal, timeoutMs: 0 },
          );
          for await (const res of stream) {
            if (res.event === undefined) {
              continue;
            }
            last = res.event.sequence;
            failures = 0;
            yield res.event;
          }
          // papayd ended the stream without an error: connect again.
          throw new PapaydError(new ConnectError("the event stream ended", Code.Unavailable));
        } catch (err) {
          if (stop.signal.aborted) {
            return;
          }
          const e = toPapaydError(err);
          if (isPermanent(e)) {
            throw e;
          }
          const delay = Math.min(maxBackoff, minBackoff * 2 ** failures);
          failures++;
          opts.onReconnect?.(e, last, delay);
          await sleep(delay, stop.signal);
        }
      }
    } finally {
      // Ends the HTTP/2 stream of a caller that broke out of its loop.
      stop.abort();
      opts.signal?.removeEventListener("abort", onAbort);
    }
  }

  return {
    agreements: createClient(AgreementService, transport),
    charges: createClient(ChargeService, transport),
    refunds: createClient(RefundService, transport),
    events,
    webhooks: createClient(WebhookService, transport),
    audit: createClient(AuditService, transport),
    streamEvents,
    close: () => sessionManager.abort(),
  };
}
