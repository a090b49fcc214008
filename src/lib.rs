//! yungate: a gRPC gateway for the Allinpay Yun Account (云账户) merchant API.
//!
//! A tour: [`provider`] speaks the provider's protocol (keys, signatures,
//! field encryption, the signed HTTP envelope, the catalogue of the 49 calls)
//! and knows nothing else. [`grpc`] is the public gRPC contract generated
//! from `proto/yungate/v1`. [`sandbox`] is a simulator of the provider, an HTTP
//! server of its own that the gateway and the tests reach over sockets like
//! the real one. [`cli`] holds the `yungate` command's subcommands: `crypto`
//! (sign, verify, encrypt, decrypt, inspect for people debugging signatures)
//! and `sandbox`.

pub mod cli;
pub mod config;
pub mod grpc;
pub mod provider;
pub mod sandbox;
pub mod serve;
