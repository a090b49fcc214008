//! Compiles `proto/yungate/v1/*.proto` in pure Rust (protox), so a fresh machine needs no `protoc`.
//!
//! Writes the tonic/prost code and the encoded descriptor set (for server
//! reflection and the data-driven conversions) to OUT_DIR.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/yungate/v1/common.proto",
        "proto/yungate/v1/member.proto",
        "proto/yungate/v1/order.proto",
        "proto/yungate/v1/merchant.proto",
        "proto/yungate/v1/page.proto",
        "proto/yungate/v1/notification.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(files, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("yungate_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
