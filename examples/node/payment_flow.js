// A Node.js client of yungate: takes a payment end to end and reads the google.rpc error details.
//
// Usage: node payment_flow.js [--target HOST:PORT] [--start PATH_TO_YUNGATE]
//
// The API is loaded at run time from ../../proto with @grpc/proto-loader, so
// it always matches this checkout. gRPC errors carry their details in the
// `grpc-status-details-bin` trailer as a google.rpc.Status; reading them
// needs the googleapis protos (google/rpc/status.proto, error_details.proto),
// which the google-proto-files package ships.

"use strict";

const { spawn } = require("node:child_process");
const net = require("node:net");
const path = require("node:path");

const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const googleProtoFiles = require("google-proto-files");
const protobuf = require("protobufjs");

const PROTO_ROOT = path.resolve(__dirname, "..", "..", "proto");
// The folder holding google/rpc/*.proto (and google/protobuf/*.proto).
const GOOGLE_PROTOS = path.resolve(googleProtoFiles.getProtoPath("rpc", "status.proto"), "..", "..", "..");
const CARD = "6228480402637874214";
const NAME = "王小二";
const ID_NO = "610422198600000000";
const PHONE = "13800138000";

function loadApi() {
  const files = ["member.proto", "order.proto"].map((f) => path.join("yungate", "v1", f));
  const definition = protoLoader.loadSync(files, {
    includeDirs: [PROTO_ROOT, GOOGLE_PROTOS],
    keepCase: true, // field names as in the .proto files (snake_case)
    longs: Number, // int64 fen amounts as numbers (safe below 2^53)
    enums: String,
    defaults: true,
  });
  return grpc.loadPackageDefinition(definition).yungate.v1;
}

/** google.rpc.Status and the detail messages yungate sends, from the googleapis protos. */
function loadDetails() {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => path.join(GOOGLE_PROTOS, target);
  root.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"]);
  return {
    status: root.lookupType("google.rpc.Status"),
    types: {
      "type.googleapis.com/google.rpc.ErrorInfo": root.lookupType("google.rpc.ErrorInfo"),
      "type.googleapis.com/google.rpc.BadRequest": root.lookupType("google.rpc.BadRequest"),
      "type.googleapis.com/google.rpc.RetryInfo": root.lookupType("google.rpc.RetryInfo"),
    },
  };
}

/** The error's details by type name (ErrorInfo, BadRequest, RetryInfo). */
function errorDetails(details, err) {
  const bin = err.metadata && err.metadata.get("grpc-status-details-bin")[0];
  if (!bin) return {};
  const status = details.status.decode(bin);
  const out = {};
  for (const any of status.details) {
    const type = details.types[any.type_url || any.typeUrl];
    if (type) out[type.name] = type.toObject(type.decode(any.value));
  }
  return out;
}

function unary(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + 10_000 }, (err, answer) => (err ? reject(err) : resolve(answer)));
  });
}

async function refused(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error("the call should have been refused");
}

function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
}

async function paymentFlow(target) {
  const api = loadApi();
  const details = loadDetails();
  const members = new api.MemberService(target, grpc.credentials.createInsecure());
  const orders = new api.OrderService(target, grpc.credentials.createInsecure());
  const user = `node-${Date.now()}`;

  const created = await unary(members, "CreateMember", {
    biz_user_id: user,
    member_type: "MEMBER_TYPE_INDIVIDUAL",
    source: "SOURCE_MOBILE",
  });
  console.log(`created member ${created.biz_user_id} (provider id ${created.user_id})`);
  await unary(members, "SetRealName", {
    biz_user_id: user,
    name: NAME,
    identity_type: "IDENTITY_TYPE_ID_CARD",
    identity_no: ID_NO,
  });
  await unary(members, "SendVerificationCode", {
    biz_user_id: user,
    phone: PHONE,
    verification_code_type: "VERIFICATION_CODE_TYPE_BIND_PHONE",
  });
  await unary(members, "BindPhone", { biz_user_id: user, phone: PHONE, verification_code: "9999" });
  const applied = await unary(members, "ApplyBindBankCard", {
    biz_user_id: user,
    card_no: CARD,
    phone: PHONE,
    name: NAME,
    card_check: "CARD_CHECK_REAL_NAME_PAY",
    identity_type: "IDENTITY_TYPE_ID_CARD",
    identity_no: ID_NO,
  });
  await unary(members, "BindBankCard", {
    biz_user_id: user,
    trans_num: applied.trans_num,
    phone: PHONE,
    verification_code: "9999",
  });
  console.log("bound phone and card");

  // A bad request: INVALID_ARGUMENT, with a google.rpc.BadRequest naming each field.
  const invalid = await refused(
    unary(orders, "DepositApply", { biz_order_no: `${user}-bad`, biz_user_id: user, amount: 100, fee: 500 }),
  );
  check(invalid.code === grpc.status.INVALID_ARGUMENT, `INVALID_ARGUMENT, got ${invalid.code}`);
  const bad = errorDetails(details, invalid).BadRequest;
  check(bad && bad.fieldViolations.some((v) => v.field === "fee"), "a BadRequest violation for fee");
  for (const v of bad.fieldViolations) console.log(`  violation: ${v.field}: ${v.description}`);

  // A provider refusal: ErrorInfo with domain allinpay and the section 7 code as reason.
  const unknown = await refused(unary(members, "GetMemberInfo", { biz_user_id: `${user}-nobody` }));
  const info = errorDetails(details, unknown).ErrorInfo;
  check(unknown.code === grpc.status.NOT_FOUND, `NOT_FOUND, got ${unknown.code}`);
  check(info && info.domain === "allinpay" && info.reason === "30001", "ErrorInfo allinpay/30001");
  console.log(`  provider refusal: ${info.domain} ${info.reason} (${info.metadata.message})`);

  const deposit = await unary(orders, "DepositApply", {
    biz_order_no: `${user}-dep`,
    biz_user_id: user,
    account_set_no: "100000",
    amount: 10000,
    fee: 0,
    industry_code: "1010",
    industry_name: "保险代理",
    source: "SOURCE_PC",
    pay_method: { realnamepay: { bank_card_no: CARD, amount: 10000 } },
  });
  const confirmed = await unary(orders, "ConfirmPaySms", {
    biz_user_id: user,
    biz_order_no: `${user}-dep`,
    verification_code: "9999",
    consumer_ip: "127.0.0.1",
  });
  check(confirmed.pay_status === "success", `payStatus success, got ${confirmed.pay_status}`);
  const balance = await unary(orders, "QueryBalance", { biz_user_id: user, account_set_no: "100000" });
  check(balance.all_amount === 10000, `balance 10000, got ${balance.all_amount}`);
  console.log(`deposit ${deposit.order_no} confirmed; balance ${balance.all_amount} fen`);
  members.close();
  orders.close();
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts `yungate serve` on a free port and waits until it accepts gRPC. */
async function startGateway(binary) {
  const port = await freePort();
  const target = `127.0.0.1:${port}`;
  const proc = spawn(binary, ["serve", "--listen", target, "--notify-listen", "127.0.0.1:0"], { stdio: ["ignore", "ignore", "ignore"] });
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  await new Promise((resolve, reject) => client.waitForReady(Date.now() + 60_000, (e) => (e ? reject(e) : resolve())));
  client.close();
  return { proc, target };
}

async function main() {
  const args = process.argv.slice(2);
  const option = (name) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  let target = option("--target") || "127.0.0.1:50051";
  let proc;
  const binary = option("--start");
  if (binary) ({ proc, target } = await startGateway(binary));
  try {
    await paymentFlow(target);
  } finally {
    if (proc) proc.kill("SIGTERM");
  }
  console.log("node example: payment flow completed");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
