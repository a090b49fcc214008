//! Fuzz target: whatever the provider (or a man in the middle) answers is refused or read into the typed response, never panicked on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use yungate::grpc::convert::{from_wire, pool};
use yungate::provider::wire::{ResponseEnvelope, parse_signed_value};

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = ResponseEnvelope::parse(data) else { return };
    let Some(signed) = envelope.signed_value else { return };
    let Ok(value) = parse_signed_value(&signed) else { return };
    // Every response message of the API, as a verified answer would be read.
    for message in pool().all_messages() {
        if message.full_name().ends_with("Response") {
            let _ = from_wire(&message, &value);
        }
    }
});
