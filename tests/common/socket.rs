//! The test client's lower-level ways in: a socket with a small receive buffer, a client built
//! from an already upgraded stream, raw frames out.

use futures_util::SinkExt;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::WsClient;

impl WsClient {
    /// Connects over a socket with a small receive buffer (see [`TestServer::listen_slow`]).
    pub async fn connect_small_rcvbuf(url: &str, addr: std::net::SocketAddr) -> WsClient {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let stream = socket.connect(addr).await.expect("tcp connect");
        let req = url.into_client_request().expect("request");
        let (ws, _) = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(stream))
            .await
            .expect("websocket handshake");
        WsClient::after_handshake(ws).await
    }

    /// Reads the hello and first status of a freshly connected socket.
    pub async fn after_handshake(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> WsClient {
        let mut c = WsClient {
            ws,
            hello: Value::Null,
        };
        let hello = c.recv().await;
        assert_eq!(
            hello["type"], "hello",
            "first message must be hello: {hello}"
        );
        c.hello = hello;
        let status = c.recv().await;
        assert_eq!(
            status["type"], "status",
            "second message must be status: {status}"
        );
        c
    }

    /// Sends a raw message (binary frames, oversized frames).
    pub async fn send_message(&mut self, m: Message) {
        self.ws.send(m).await.expect("send");
    }
}
