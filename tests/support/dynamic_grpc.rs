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
    let (service, rpc) = rpc_of(call).expect("a backend or page call");
    let method = pool()
        .get_service_by_name(&format!("yungate.v1.{service}"))
        .and_then(|s| s.methods().find(|m| m.name() == rpc))
        .expect("the rpc exists");
    let request = from_wire(&method.input(), &wire).map_err(|e| Status::invalid_argument(e.to_string()))?;
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_str(&format!("/yungate.v1.{service}/{rpc}")).unwrap();
    let answer = grpc
        .unary(Request::new(request), path, DynamicCodec(method.output()))
        .await?
        .into_inner();
    Ok(Json::Object(to_wire(&answer)))
}
