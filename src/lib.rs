//! yungate: a gRPC gateway for the Allinpay Yun Account (云账户) merchant API.
//!
//! A tour: [`provider`] speaks the provider's protocol (keys, signatures,
//! field encryption, the signed HTTP envelope, the catalogue of the 49 calls)
//! and knows nothing else. [`grpc`] is the public gRPC contract generated
//! from `proto/yungate/v1`. [`sandbox`] is a simulator of the provider, an HTTP
//! server of its own that the gateway and the tests reach over sockets like
//! the real one. [`serve`] starts the gateway: its own accept loop with TLS
//! and limits (`serve/listener.rs`), who may call (`serve/access.rs`),
//! health and the drain, and the tower stacks (`serve/stack.rs`): a call
//! goes [`grpc`] (validate, convert) ->
//! [`idempotency`] -> [`ratelimit`] -> [`exchange`]'s `SoaService`, with
//! records and buckets in a [`store`] (Redis, or in memory); the
//! [`resolver`] asks the provider about records of unknown outcome nobody
//! retries, and [`reconcile`] matches the provider's daily file against the
//! records and the [`timeline`]; every failure
//! is an [`error::GatewayError`] mapped to a status once. The provider's
//! notifications come in through [`notify`] (verified by
//! `provider::notify`, stored in the `store::notifications` log) and go out
//! to subscribers through `grpc::notification`. [`cli`] holds the `yungate` command's subcommands: `crypto`
//! (sign, verify, encrypt, decrypt, inspect for people debugging signatures)
//! and `sandbox`.

pub mod cli;
pub mod config;
pub mod error;
pub mod exchange;
pub mod grpc;
pub mod idempotency;
pub mod notify;
pub mod provider;
pub mod ratelimit;
pub mod reconcile;
pub mod resolver;
pub mod sandbox;
pub mod serve;
pub mod store;
pub mod telemetry;
pub mod timeline;
