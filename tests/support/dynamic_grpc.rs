//! A gRPC client for any rpc of the API by name, with requests given as the provider's JSON (wire names).
//!
//! Lets one test drive all 47 rpcs from data: the request JSON is read into
//! a message with the gateway's own descriptor-driven converter, sent over a
//! real channel, and the answer comes back as a dynamic message.

use std::str::FromStr;

use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use serde_json::Value as Json;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Request, Status};
use yungate::grpc::convert::{from_wire, pool, to_wire};
use yungate::grpc::rpc_of;
use yungate::provider::calls::Call;

struct DynamicCodec(MessageDescriptor);
struct DynamicEncoder;
struct DynamicDecoder(MessageDescriptor);

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;
    fn encoder(&mut self) -> DynamicEncoder {
        DynamicEncoder
    }
    fn decoder(&mut self) -> DynamicDecoder {
        DynamicDecoder(self.0.clone())
    }
}

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;
    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst).map_err(|e| Status::internal(e.to_string()))
    }
}

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        DynamicMessage::decode(self.0.clone(), src)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

/// Calls the rpc serving `call` with `wire` (provider JSON) and returns the answer as provider JSON.
pub async fn call(channel: &Channel, call: Call, wire: Json) -> Result<Json, Status> {
    call_keyed(channel, call, wire, None).await
}

/// [`call`] with an `idempotency-key` metadata value.
pub async fn call_keyed(channel: &Channel, call: Call, wire: Json, key: Option<&str>) -> Result<Json, Status> {
    call_answered(channel, call, wire, key).await.map(|(_, answer)| answer)
}

/// [`call_keyed`] with the answer's metadata (`idempotent-replayed`, `idempotent-recovered`...).
pub async fn call_answered(
    channel: &Channel,
    call: Call,
    wire: Json,
    key: Option<&str>,
) -> Result<(tonic::metadata::MetadataMap, Json), Status> {
    let (service, rpc) = rpc_of(call).expect("a backend or page call");
    let method = pool()
        .get_service_by_name(&format!("yungate.v1.{service}"))
        .and_then(|s| s.methods().find(|m| m.name() == rpc))
        .expect("the rpc exists");
    let request = from_wire(&method.input(), &wire).map_err(|e| Status::invalid_argument(e.to_string()))?;
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_str(&format!("/yungate.v1.{service}/{rpc}")).unwrap();
    let mut request = Request::new(request);
    if let Some(key) = key {
        request.metadata_mut().insert(
            "idempotency-key",
            key.parse().map_err(|_| Status::invalid_argument("key"))?,
        );
    }
    let answer = grpc.unary(request, path, DynamicCodec(method.output())).await?;
    let metadata = answer.metadata().clone();
    Ok((metadata, Json::Object(to_wire(answer.get_ref()))))
}

struct RawCodec;
struct RawEncoder;
struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        use prost::bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        use prost::bytes::Buf;
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

/// Sends `bytes` as the request message of `/{service}/{rpc}`, unchecked:
/// what a broken or hostile client sends.
pub async fn raw(channel: &Channel, service: &str, rpc: &str, bytes: Vec<u8>) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_str(&format!("/{service}/{rpc}")).unwrap();
    Ok(grpc.unary(Request::new(bytes), path, RawCodec).await?.into_inner())
}

/// The field violations of an INVALID_ARGUMENT status, as (field, description).
pub fn violations(status: &Status) -> Vec<(String, String)> {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("a BadRequest")
        .field_violations
        .iter()
        .map(|v| (v.field.clone(), v.description.clone()))
        .collect()
}
