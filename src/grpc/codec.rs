//! The protobuf codec of the generated services: prost's, except that a request that cannot be decoded is the caller's fault (INVALID_ARGUMENT), not INTERNAL.
//!
//! tonic-prost maps every `DecodeError` (invalid UTF-8 in a string field,
//! nesting past prost's recursion limit, truncated bytes) to INTERNAL, which
//! tells a caller the gateway is broken and invites a retry of the same
//! bytes. build.rs points the generated code here (`codec_path`); the
//! generated clients the tests use share it.

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::ProstEncoder;

/// prost encoding, decoding with caller-facing errors.
#[derive(Debug, Clone)]
pub struct GatewayCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for GatewayCodec<T, U> {
    fn default() -> Self {
        GatewayCodec(PhantomData)
    }
}

impl<T, U> Codec for GatewayCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = GatewayDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        GatewayDecoder(PhantomData)
    }
}

/// Decodes `U`; a malformed message is INVALID_ARGUMENT with a BadRequest.
#[derive(Debug, Clone, Default)]
pub struct GatewayDecoder<U>(PhantomData<U>);

impl<U: Message + Default> Decoder for GatewayDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|e| super::status::undecodable(&e))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}
