//! Compiles `proto/yungate/v1/*.proto` in pure Rust (protox), so a fresh machine needs no `protoc`.
//!
//! Writes the tonic/prost code and the encoded descriptor set (for server
//! reflection and the data-driven conversions, with comments for grpcurl
//! describe) to OUT_DIR.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/yungate/v1/options.proto",
        "proto/yungate/v1/common.proto",
        "proto/yungate/v1/member.proto",
        "proto/yungate/v1/order.proto",
        "proto/yungate/v1/merchant.proto",
        "proto/yungate/v1/page.proto",
        "proto/yungate/v1/notification.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler
        .include_imports(true)
        .include_source_info(true)
        .open_files(files)?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    // Encoded by protox itself: prost_types drops custom options such as
    // (yungate.v1.wire_name), which the conversions read at run time.
    std::fs::write(
        out.join("yungate_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    let fds = compiler.file_descriptor_set();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
