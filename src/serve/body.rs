//! Request bodies bounded in time and in memory, and response bodies that keep their connection counted as busy until they end.
//!
//! tonic buffers a request message until its last byte arrives, so a
//! client that opens many streams and never finishes them holds up to
//! `max_message_bytes` per stream. Here a request body must end within
//! `request_body_timeout` of its arrival, and once a message's 5-byte gRPC
//! prefix says how long it is, the whole message is reserved at once from
//! its connection's share and then from the replica's budget before the
//! body is read further: when either is spent, HTTP/2 flow control stops
//! the client, and what tonic buffers stays within the budgets (plus one
//! frame per stream, which the HTTP/2 windows bound anyway). Reserving a
//! message whole, in one order (connection, then replica), means no body
//! ever holds part of what it needs while waiting for the rest, so bodies
//! cannot wait on each other in a cycle. The reservation is returned when
//! the next message starts or the body ends or is dropped, i.e. once
//! tonic has decoded the message, before the handler runs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tonic::codegen::Bytes;

use super::listener::ActiveRequest;

/// The largest HTTP/2 DATA frame the gRPC listener accepts (`max_frame_size`,
/// the protocol's minimum): what a stream may hold beyond its reservation.
pub const FRAME_BYTES: usize = 16_384;

/// The gRPC message prefix: a compression flag and a 4-byte big-endian length.
const PREFIX: usize = 5;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Permits = (OwnedSemaphorePermit, OwnedSemaphorePermit);
type Reservation = Pin<Box<dyn Future<Output = Option<Permits>> + Send>>;

/// What a body shares: its connection's share and the replica's budget.
#[derive(Debug, Clone)]
pub struct Budgets {
    pub connection: Arc<Semaphore>,
    pub global: Arc<Semaphore>,
    /// Messages longer than this are refused by tonic on their prefix: nothing to reserve.
    pub max_message: usize,
}

/// A request body that must end by a deadline, each message reserved whole before it is read.
pub struct BoundedBody<B> {
    inner: B,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
    /// Passed through since the end (or refused after an error).
    ended: bool,
    failed: bool,
    budgets: Budgets,
    prefix: [u8; PREFIX],
    prefix_len: usize,
    /// Bytes of the current message still to come after its prefix.
    remaining: usize,
    /// A reservation of this many bytes is needed before reading on.
    to_reserve: Option<u32>,
    reserving: Option<Reservation>,
    held: Option<Permits>,
}

impl<B> BoundedBody<B> {
    pub fn new(inner: B, arrival: Instant, timeout: Duration, budgets: Budgets) -> Self {
        BoundedBody {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(arrival + timeout)),
            timeout,
            ended: false,
            failed: false,
            budgets,
            prefix: [0; PREFIX],
            prefix_len: 0,
            remaining: 0,
            to_reserve: None,
            reserving: None,
            held: None,
        }
    }

    /// Follows the message framing through `data`, noting when a message's
    /// length becomes known (reserve it) and when it is complete.
    fn account(&mut self, data: &[u8]) {
        let mut at = 0;
        while at < data.len() {
            if self.remaining == 0 {
                if self.prefix_len == 0 {
                    // A new message: the previous one has been handed over whole.
                    self.held = None;
                }
                let take = (PREFIX - self.prefix_len).min(data.len() - at);
                self.prefix[self.prefix_len..self.prefix_len + take].copy_from_slice(&data[at..at + take]);
                self.prefix_len += take;
                at += take;
                if self.prefix_len == PREFIX {
                    let [_, a, b, c, d] = self.prefix;
                    let length = u32::from_be_bytes([a, b, c, d]);
                    self.remaining = length as usize;
                    if self.remaining == 0 {
                        self.prefix_len = 0;
                    } else if self.remaining <= self.budgets.max_message {
                        self.to_reserve = Some(length.saturating_add(PREFIX as u32));
                    }
                }
            } else {
                let take = self.remaining.min(data.len() - at);
                self.remaining -= take;
                at += take;
                if self.remaining == 0 {
                    // Complete within what was already read: nothing more to reserve for it.
                    self.prefix_len = 0;
                    self.to_reserve = None;
                }
            }
        }
    }
}

impl<B> Body for BoundedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        if this.ended {
            return Pin::new(&mut this.inner).poll_frame(cx).map_err(Into::into);
        }
        // A body whose data all came in time is not failed for a late poll of its end.
        if !this.inner.is_end_stream() && this.deadline.as_mut().poll(cx).is_ready() {
            this.failed = true;
            this.held = None;
            // A reservation still queued would hold back the bodies behind it.
            this.reserving = None;
            this.to_reserve = None;
            return Poll::Ready(Some(Err(Box::new(crate::grpc::status::request_body_timeout(
                this.timeout,
            )))));
        }
        if let Some(bytes) = this.to_reserve {
            let reserving = this.reserving.get_or_insert_with(|| {
                let (connection, global) = (Arc::clone(&this.budgets.connection), Arc::clone(&this.budgets.global));
                Box::pin(async move {
                    let c = connection.acquire_many_owned(bytes).await.ok()?;
                    let g = global.acquire_many_owned(bytes).await.ok()?;
                    Some((c, g))
                })
            });
            match reserving.as_mut().poll(cx) {
                // The deadline above is registered: it ends the wait.
                Poll::Pending => return Poll::Pending,
                Poll::Ready(permits) => {
                    this.reserving = None;
                    this.to_reserve = None;
                    // The semaphores are never closed; `None` cannot happen.
                    this.held = permits;
                }
            }
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                this.ended = true;
                this.held = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.account(data);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.failed = true;
                this.held = None;
                this.reserving = None;
                this.to_reserve = None;
                Poll::Ready(Some(Err(e.into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that marks its connection busy until it ends (or is dropped).
pub struct CountedBody<B> {
    inner: B,
    _active: Option<ActiveRequest>,
}

impl<B> CountedBody<B> {
    pub fn new(inner: B, active: Option<ActiveRequest>) -> Self {
        CountedBody { inner, _active: active }
    }
}

impl<B> Body for CountedBody<B>
where
    B: Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self._active = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt as _, StreamBody};

    use super::*;

    fn frames(n: usize, size: usize) -> impl Body<Data = Bytes, Error = std::convert::Infallible> + Unpin {
        StreamBody::new(tokio_stream::iter(
            (0..n).map(move |_| Ok(Frame::data(Bytes::from(vec![0u8; size])))),
        ))
    }

    fn budgets(connection: usize, global: usize) -> (Budgets, Arc<Semaphore>, Arc<Semaphore>) {
        let (c, g) = (Arc::new(Semaphore::new(connection)), Arc::new(Semaphore::new(global)));
        let budgets = Budgets {
            connection: Arc::clone(&c),
            global: Arc::clone(&g),
            max_message: 1 << 20,
        };
        (budgets, c, g)
    }

    /// One gRPC message of `length` bytes, cut into frames of `frame` bytes.
    fn message(length: u32, frame: usize) -> impl Body<Data = Bytes, Error = std::convert::Infallible> + Unpin {
        let mut bytes = vec![0u8];
        bytes.extend_from_slice(&length.to_be_bytes());
        bytes.resize(PREFIX + length as usize, b'x');
        let frames: Vec<_> = bytes
            .chunks(frame)
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        StreamBody::new(tokio_stream::iter(frames))
    }

    #[tokio::test]
    async fn a_message_is_reserved_whole_and_returned_with_the_body() {
        let (budgets, connection, global) = budgets(100_000, 1_000_000);
        let mut body = BoundedBody::new(message(50_000, 16_384), Instant::now(), Duration::from_secs(5), budgets);
        body.frame().await.unwrap().unwrap();
        body.frame().await.unwrap().unwrap();
        assert_eq!(
            connection.available_permits(),
            100_000 - 50_005,
            "the message is reserved whole"
        );
        assert_eq!(global.available_permits(), 1_000_000 - 50_005);
        while body.frame().await.is_some() {}
        assert_eq!(connection.available_permits(), 100_000, "returned at the end");
        let mut dropped = BoundedBody::new(message(50_000, 16_384), Instant::now(), Duration::from_secs(5), {
            Budgets {
                connection: Arc::clone(&connection),
                global: Arc::clone(&global),
                max_message: 1 << 20,
            }
        });
        dropped.frame().await.unwrap().unwrap();
        dropped.frame().await.unwrap().unwrap();
        drop(dropped);
        assert_eq!(
            connection.available_permits(),
            100_000,
            "and with a body dropped half-read"
        );
        assert_eq!(global.available_permits(), 1_000_000);
    }

    #[tokio::test]
    async fn a_small_message_in_one_frame_needs_no_reservation() {
        let (budgets, connection, _) = budgets(10, 10);
        let mut body = BoundedBody::new(message(1000, 16_384), Instant::now(), Duration::from_secs(5), budgets);
        body.frame().await.unwrap().unwrap();
        assert!(
            body.frame().await.is_none(),
            "read although the budget is smaller than the message"
        );
        assert_eq!(connection.available_permits(), 10);
    }

    #[tokio::test]
    async fn a_spent_budget_stops_reading_until_the_deadline() {
        let (budgets, _connection, _) = budgets(40_000, 1_000_000);
        let mut body = BoundedBody::new(
            message(50_000, 16_384),
            Instant::now(),
            Duration::from_millis(300),
            budgets,
        );
        // The first frame is read; the message does not fit the connection's share: the rest waits, then the deadline ends it.
        body.frame().await.unwrap().unwrap();
        let error = body.frame().await.unwrap().unwrap_err();
        let status = error.downcast_ref::<tonic::Status>().expect("a status");
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert!(status.message().contains("not started"), "{status:?}");
        assert!(body.frame().await.is_none(), "nothing more after the error");
    }

    #[tokio::test]
    async fn two_bodies_never_wait_on_each_other() {
        // Room for one message at a time: the second waits for the first to end, then proceeds.
        let (budgets, connection, _) = budgets(60_000, 1_000_000);
        let mut first = BoundedBody::new(
            message(50_000, 16_384),
            Instant::now(),
            Duration::from_secs(5),
            budgets.clone(),
        );
        let mut second = BoundedBody::new(message(50_000, 16_384), Instant::now(), Duration::from_secs(5), budgets);
        first.frame().await.unwrap().unwrap();
        second.frame().await.unwrap().unwrap();
        let waiting = tokio::spawn(async move { while second.frame().await.is_some() {} });
        while first.frame().await.is_some() {}
        tokio::time::timeout(Duration::from_secs(2), waiting)
            .await
            .expect("the second body ends")
            .unwrap();
        assert_eq!(connection.available_permits(), 60_000);
    }

    #[tokio::test]
    async fn the_counted_body_keeps_its_connection_busy_until_its_end() {
        let state = Arc::new(super::super::listener::ConnectionState::new(1));
        let mut body = CountedBody::new(frames(2, 10), Some(state.begin()));
        body.frame().await.unwrap().unwrap();
        assert_eq!(state.active(), 1);
        body.frame().await.unwrap().unwrap();
        assert!(body.frame().await.is_none());
        assert_eq!(state.active(), 0, "the end of the response frees the connection");
        let dropped = CountedBody::new(frames(2, 10), Some(state.begin()));
        drop(dropped);
        assert_eq!(state.active(), 0, "so does a response the client abandoned");
    }
}
