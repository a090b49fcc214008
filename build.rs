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
        "proto/yungate/v1/outcome.proto",
        "proto/yungate/v1/reconciliation.proto",
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
    // Messages holding personal data or secrets get a masked Debug instead of
    // prost's derived one, so that no request or answer can be logged in clear.
    let masked: Vec<String> = fds
        .file
        .iter()
        .filter(|f| f.package() == "yungate.v1")
        .flat_map(|f| f.message_type.iter())
        .filter(|m| m.field.iter().any(|field| SENSITIVE_FIELDS.contains(&field.name())))
        .map(|m| m.name().to_owned())
        .collect();
    let impls: String = masked
        .iter()
        .map(|name| {
            format!(
                "impl ::core::fmt::Debug for {name} {{\n    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {{\n        f.write_str(\"{name} {{ *** }}\")\n    }}\n}}\n"
            )
        })
        .collect();
    std::fs::write(out.join("masked_debug.rs"), impls)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .skip_debug(masked.iter().map(|name| format!(".yungate.v1.{name}")))
        // prost's codec answers INTERNAL to an undecodable request; ours says INVALID_ARGUMENT.
        .codec_path("crate::grpc::codec::GatewayCodec")
        .compile_fds(fds)?;
    Ok(())
}

/// Proto field names that hold personal data or secrets (invariant 6).
const SENSITIVE_FIELDS: &[&str] = &[
    "name",
    "identity_no",
    "identity_card_no",
    "card_no",
    "bank_card_no",
    "last_card_no",
    "phone",
    "old_phone",
    "new_phone",
    "legal_phone",
    "telephone",
    "legal_name",
    "legal_ids",
    "account_no",
    "account_name",
    "address",
    "cvv2",
    "validate",
    "old_password",
    "new_password",
    "pay_password",
    "quick_new_pwd",
    "verification_code",
    "new_verification_code",
    "mobile_ms_code",
    "mobile_no_mask",
    "acct",
    "auth_code",
    // A notification as received may hold a phone (4.1.23 newPhone).
    "raw_json",
];
