//! A gateway on its embedded sandbox (nothing about the provider configured), on ports of its own, and a call that shows a request was served.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use tonic::Code;
use tonic::transport::Channel;
use yungate::config::{Config, NotifyConfig};
use yungate::grpc::proto::GetMemberInfoRequest;
use yungate::grpc::proto::member_service_client::MemberServiceClient;

/// The embedded defaults, on free ports.
pub fn config() -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        notify: NotifyConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..NotifyConfig::default()
        },
        ..Config::default()
    }
}

/// A plaintext channel.
pub async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap()
}

/// GetMemberInfo of an unknown member: NOT_FOUND from the sandbox means
/// the call passed every layer and was answered by the provider.
pub async fn member_lookup(channel: &Channel) -> Result<(), tonic::Status> {
    let request = GetMemberInfoRequest {
        biz_user_id: "nobody".into(),
    };
    match MemberServiceClient::new(channel.clone()).get_member_info(request).await {
        Err(e) if e.code() == Code::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(r) => panic!("an unknown member was found: {r:?}"),
    }
}
