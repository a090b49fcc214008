//! The provider protocol: keys and signatures, the wire envelope, the one HTTP caller, the call catalogue.
//!
//! This module knows nothing of gRPC, Redis or the sandbox (invariant 1 of
//! ARCHITECTURE.md): it could be published on its own as a client library.

pub mod calls;
pub mod checkfile;
pub mod client;
pub mod codes;
pub mod crypto;
pub mod errors;
pub mod formats;
pub mod member;
pub mod notify;
pub mod sensitive;
pub mod wire;
