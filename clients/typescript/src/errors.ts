// PapaydError: a failed call, with what papayd puts in its status details
// (google.rpc.ErrorInfo's reason, google.rpc.BadRequest's field violations).

import { create, createFileRegistry } from "@bufbuild/protobuf";
import type { DescMessage, Message } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";

/** google.rpc.ErrorInfo (google/rpc/error_details.proto). */
export type ErrorInfo = Message<"google.rpc.ErrorInfo"> & {
  reason: string;
  domain: string;
  metadata: { [key: string]: string };
};

/** google.rpc.BadRequest.FieldViolation (the fields papayd sets, and reason). */
export type FieldViolation = Message<"google.rpc.BadRequest.FieldViolation"> & {
  field: string;
  description: string;
  reason: string;
};

/** google.rpc.BadRequest. */
export type BadRequest = Message<"google.rpc.BadRequest"> & {
  fieldViolations: FieldViolation[];
};

function str(name: string, number: number, jsonName: string) {
  return { name, number, jsonName, label: Label.OPTIONAL, type: Type.STRING };
}

// The two messages of google/rpc/error_details.proto that papayd sends, with
// their names and field numbers (a detail is decoded by its type name, and
// fields left out here are skipped as unknown fields).
const errorDetails = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "google/rpc/error_details.proto",
    package: "google.rpc",
    syntax: "proto3",
    messageType: [
      {
        name: "ErrorInfo",
        field: [
          str("reason", 1, "reason"),
          str("domain", 2, "domain"),
          {
            name: "metadata",
            number: 3,
            jsonName: "metadata",
            label: Label.REPEATED,
            type: Type.MESSAGE,
            typeName: ".google.rpc.ErrorInfo.MetadataEntry",
          },
        ],
        nestedType: [
          {
            name: "MetadataEntry",
            field: [str("key", 1, "key"), str("value", 2, "value")],
            options: { mapEntry: true },
          },
        ],
      },
      {
        name: "BadRequest",
        field: [
          {
            name: "field_violations",
            number: 1,
            jsonName: "fieldViolations",
            label: Label.REPEATED,
            type: Type.MESSAGE,
            typeName: ".google.rpc.BadRequest.FieldViolation",
          },
        ],
        nestedType: [
          {
            name: "FieldViolation",
            field: [
              str("field", 1, "field"),
              str("description", 2, "description"),
              str("reason", 3, "reason"),
            ],
          },
        ],
      },
    ],
  }),
  () => undefined,
);

function message(typeName: string): DescMessage {
  const desc = errorDetails.getMessage(typeName);
  if (desc === undefined) {
    throw new Error(`papayd client: no descriptor for ${typeName}`);
  }
  return desc;
}

/** Schema of google.rpc.ErrorInfo, for ConnectError.findDetails. */
export const ErrorInfoSchema = message("google.rpc.ErrorInfo");
/** Schema of google.rpc.BadRequest, for ConnectError.findDetails. */
export const BadRequestSchema = message("google.rpc.BadRequest");

/** One invalid field of a request: its name (e.g. "out_trade_no") and why. */
export interface PapaydFieldViolation {
  field: string;
  description: string;
}

/**
 * A call papayd refused or that failed. It is a ConnectError (code, metadata,
 * details, rawMessage) with papayd's details decoded: reason is ErrorInfo's
 * reason ("" when the error has none, e.g. a transport failure) and
 * fieldViolations BadRequest's violations (empty unless INVALID_ARGUMENT).
 */
export class PapaydError extends ConnectError {
  // name stays "ConnectError": Connect recognises its errors by it (across
  // copies of the package), and so passes a PapaydError through unchanged.
  // ConnectError's instanceof accepts every such error; PapaydError's only
  // its own instances.
  static override [Symbol.hasInstance](v: unknown): boolean {
    return typeof v === "object" && v !== null && Object.prototype.isPrototypeOf.call(PapaydError.prototype, v);
  }

  readonly reason: string;
  readonly domain: string;
  readonly errorMetadata: { [key: string]: string };
  readonly fieldViolations: PapaydFieldViolation[];

  constructor(cause: ConnectError) {
    super(cause.rawMessage, cause.code, cause.metadata, undefined, cause);
    this.details = cause.details;
    const info = cause.findDetails(ErrorInfoSchema)[0] as ErrorInfo | undefined;
    this.reason = info?.reason ?? "";
    this.domain = info?.domain ?? "";
    this.errorMetadata = { ...(info?.metadata ?? {}) };
    this.fieldViolations = (cause.findDetails(BadRequestSchema) as BadRequest[]).flatMap((br) =>
      br.fieldViolations.map((v) => ({ field: v.field, description: v.description })),
    );
  }

  /** The name of the code, e.g. "INVALID_ARGUMENT" (gRPC's spelling). */
  get codeName(): string {
    if (this.code === Code.Canceled) {
      return "CANCELLED";
    }
    return Code[this.code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
  }
}

/** toPapaydError converts anything a call threw; a PapaydError is kept. */
export function toPapaydError(err: unknown): PapaydError {
  if (err instanceof PapaydError) {
    return err;
  }
  return new PapaydError(ConnectError.from(err));
}
