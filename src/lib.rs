//! babelcast: a live simultaneous-interpretation and caption relay server.
//!
//! Publishers (interpreters, captioners, speech-to-text engines) push caption text into
//! per-language channels; babelcast stores every committed line durably and fans it out to
//! thousands of listeners over WebSocket, with resume (`since=`), partials and corrections.
//!
//! Layout (see ARCHITECTURE.md):
//! - [`config`]: the typed TOML configuration and its validation.
//! - [`catalog`]: the definitions of events and channels (file and dashboard) and their rules.
//! - [`protocol`]: the v1 wire format (the only place that knows the JSON shapes).
//! - [`record`]: a committed line, edit or handover (a `Record`), as stored and as framed.
//! - [`booth`]: who is on air, handover, audience feedback, language alert.
//! - [`channel`]: one language stream: seq, history, partial, status, fan-out.
//! - [`hub`]: the registry of events and channels, tokens and shared services.
//! - [`store`]: SQLite transcripts with a group-committing writer thread (the sequencer).
//! - [`recording`]: Ogg Opus recordings of each channel's sound (`[audio] record`).
//! - [`cluster`]: several nodes on NATS JetStream (`[cluster]`): the stream sequences,
//!   every node stores and fans out; on-air state in a key-value bucket.
//! - [`ingest`]: admission of publisher messages, shared by every way of publishing.
//! - [`formats`]: Zoom, YouTube and StreamText caption formats (pure parsers and builders).
//! - [`forward`]: egress forwarders pushing committed lines to Zoom and YouTube.
//! - [`push`]: the `babelcast push` client (stdin to a publish WebSocket).
//! - [`load`]: the `babelcast load` generator (listeners, publishers, latency, loss, cost).
//! - [`session`]: one WebSocket connection (listener or publisher).
//! - [`server`]: accept loop, HTTP routes, WebSocket upgrade, graceful shutdown.
//! - [`transcript`]: TXT / WebVTT / SRT / JSON export.
//! - [`langid`]: language identification (whatlang) as BCP-47 tags.
//! - [`limiter`]: connection limits per node and per address, token buckets.
//! - [`metrics`]: Prometheus counters and histograms.
//! - [`web`]: the embedded pages.
//! - [`demo`]: the built-in sample speech for `serve --demo`.

pub mod booth;
pub mod catalog;
pub mod channel;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod formats;
pub mod forward;
pub mod hub;
pub mod ingest;
pub mod langid;
pub mod limiter;
pub mod load;
pub mod metrics;
pub mod organiser;
pub mod protocol;
pub mod push;
pub mod record;
pub mod recording;
pub mod secret;
pub mod server;
pub mod session;
pub mod store;
pub mod transcript;
pub mod web;

pub use config::Config;
pub use server::{run, Options, Server};
